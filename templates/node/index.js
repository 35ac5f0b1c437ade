// An example program of the {{name}} plugin: `make` (`mfenv plugin make`) installs the
// dependencies of package.json into node_modules; run it in the plugin environment:
//     mfenv plugin wrapper --cwd {{name}} -- node index.js
"use strict";

const module_name = process.env.MFMODULE || "GENERIC";
const greeting =
  process.env[module_name + "_CURRENT_PLUGIN_CUSTOM_GREETING"] || "hello";

console.log(`${greeting} from {{name}} {{version}}`);

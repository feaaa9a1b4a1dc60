// Run a Python snippet under the MicroPython WebAssembly port, with the project's
// firmware modules copied into its file system. Prints what the snippet prints.
//   node tests/support/micropython/run.mjs <project-root> <snippet.py> [data-file]
// The data file, if given, is copied to /data in the MicroPython file system.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [root, snippet, data] = process.argv.slice(2);
const MODULES = [
  "firmware_bridge/__init__.py",
  "firmware_bridge/ptb1.py",
  "firmware_bridge/firmware/__init__.py",
  "firmware_bridge/firmware/core.py",
  "firmware_bridge/firmware/ads1220.py",
  "firmware_bridge/firmware/main.py",
  "tests/__init__.py",
  "tests/support/__init__.py",
  "tests/support/firmware_replay.py",
];

const lines = [];
let failed = false;
const mp = await loadMicroPython({
  heapsize: 8 * 1024 * 1024,
  stdout: (line) => lines.push(line),
  stderr: (line) => { failed = true; process.stderr.write(line + "\n"); },
});
for (const dir of ["/fw", "/fw/firmware_bridge", "/fw/firmware_bridge/firmware", "/fw/tests", "/fw/tests/support"]) {
  mp.FS.mkdir(dir);
}
for (const path of MODULES) {
  mp.FS.writeFile("/fw/" + path, readFileSync(join(root, path)));
}
if (data) mp.FS.writeFile("/data", readFileSync(data));
try {
  mp.runPython("import sys\nsys.path.insert(0, '/fw')\n" + readFileSync(snippet, "utf8"));
} catch (err) {
  failed = true;
  process.stderr.write(String(err) + "\n");
}
process.stdout.write(lines.join("\n") + "\n");
process.exit(failed ? 1 : 0);

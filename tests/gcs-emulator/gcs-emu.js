#!/usr/bin/env node
// Java-free launcher for firebase-tools' Cloud Storage emulator (GCS JSON API + Firebase API).
// firebase-tools' own `emulators:start` needs Java >= 21 and downloads
// cloud-storage-rules-runtime-*.jar from storage.googleapis.com at first start; neither is
// needed by the GCS JSON API (it uses an admin, allow-all validator), so this script replaces the
// Java rules runtime with an in-process allow-all stub and starts the emulator class directly.
// Usage: node gcs-emu.js [--host 127.0.0.1] [--port 9199] [--project demo-gcs]
//                        [--import DIR] [--export-on-exit DIR]
// Stops on SIGINT/SIGTERM (exporting first when --export-on-exit is given).
"use strict";
const path = require("path");
const fs = require("fs");
const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : dflt;
}
const host = opt("host", process.env.GCS_EMU_HOST || "127.0.0.1");
const port = +opt("port", process.env.GCS_EMU_PORT || 9199);
const projectId = opt("project", process.env.GCS_EMU_PROJECT || "demo-gcs");
const importDir = opt("import", "");
const exportDir = opt("export-on-exit", "");

// The emulator keeps its blobs in <tmpdir>/firebase/storage/blobs: a private tmpdir per instance,
// or two emulators running at once (parallel tests) delete each other's files and hang requests.
const os = require("os");
const privateTmp = fs.mkdtempSync(path.join(os.tmpdir(), "gcs-emu-"));
process.env.TMPDIR = privateTmp;

// firebase-tools is looked up next to this script, then in $GCS_EMU_TOOLS_DIR (the directory holding
// node_modules/, e.g. the tools cache of scripts/deps.d/gcs-emulator.sh).
const searchPaths = [__dirname];
if (process.env.GCS_EMU_TOOLS_DIR) searchPaths.unshift(process.env.GCS_EMU_TOOLS_DIR);
const lib = path.join(path.dirname(require.resolve("firebase-tools/package.json", { paths: searchPaths })), "lib");
const { StorageEmulator } = require(path.join(lib, "emulator/storage"));
const runtime = require(path.join(lib, "emulator/storage/rules/runtime"));
const { EmulatorRegistry } = require(path.join(lib, "emulator/registry"));
const { EmulatorLogger } = require(path.join(lib, "emulator/emulatorLogger"));

// Allow-all replacement for the Java rules runtime (only the Firebase /v0 API consults it).
const R = runtime.StorageRulesRuntime.prototype;
R.start = async function () { this._alive = true; };
R.stop = async function () { this._alive = false; };
R.loadRuleset = async function () {
  return {
    issues: new runtime.StorageRulesIssues(),
    ruleset: { verify: async () => ({ permitted: true, issues: new runtime.StorageRulesIssues() }) },
  };
};
// Print the emulator's own log lines (otherwise they go to firebase-tools' file logger, not set up here).
EmulatorLogger.prototype.log = function (type, text) {
  if (type !== "DEBUG" || process.env.GCS_EMU_DEBUG) console.log(`[storage ${type}] ${text}`);
};
EmulatorLogger.prototype.logLabeled = function (type, label, text) { this.log(type, text); };

// firebase-tools' async route handlers can throw after replying (e.g. a media upload with no
// ?name= replies 400 and then throws); without this the whole emulator process exits.
process.on("unhandledRejection", (e) => console.error("gcs-emu: request handler error (ignored):", e && e.message));

(async () => {
  const emu = new StorageEmulator({ host, port, projectId, rules: { name: "allow-all.rules", content: "" } });
  await EmulatorRegistry.start(emu); // registers it (selfLink/mediaLink need the registry) and listens
  if (importDir) {
    const meta = JSON.parse(fs.readFileSync(path.join(importDir, "firebase-export-metadata.json"), "utf8"));
    if (meta.storage) emu.storageLayer.import(path.resolve(importDir, meta.storage.path), { initiatedBy: "start" });
  }
  console.log(`gcs-emu: listening on http://${host}:${port} (project ${projectId}, pid ${process.pid})`);
  let stopping = false;
  const stop = async (sig) => {
    if (stopping) return;
    stopping = true;
    try {
      if (exportDir) {
        fs.rmSync(path.join(exportDir, "storage_export"), { recursive: true, force: true }); // drop stale blobs
        fs.mkdirSync(path.join(exportDir, "storage_export"), { recursive: true });
        await emu.storageLayer.export(path.join(exportDir, "storage_export"), { initiatedBy: "exit" });
        fs.writeFileSync(path.join(exportDir, "firebase-export-metadata.json"),
          JSON.stringify({ version: require(path.join(lib, "..", "package.json")).version, storage: { version: "1.0.0", path: "storage_export" } }));
        console.log(`gcs-emu: exported to ${exportDir}`);
      }
    } finally {
      await EmulatorRegistry.stop(emu.getName());
      fs.rmSync(privateTmp, { recursive: true, force: true });
      console.log(`gcs-emu: stopped (${sig})`);
      process.exit(0);
    }
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
})().catch((e) => { console.error("gcs-emu: failed to start:", e); process.exit(1); });

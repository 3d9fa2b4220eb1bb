#!/usr/bin/env bash
# Installs the dev Ethereum node (hardhat 2.29.1) and the Solidity compiler (solcjs 0.8.37)
# that the contract-sync integration tests (eth-sync/tests/eth_sync.rs) use, into
# testdata/eth/node_modules, and checks that the checked-in bytecode of the test contract
# (devnet/contract/SSVNetworkEvents.bin) is what devnet/contract/SSVNetworkEvents.sol compiles to.
# Idempotent: a second run with node_modules in place only re-checks the bytecode.
# Needs Node.js 20 and npm (hardhat 3 would need Node 22; 2.29.1 is pinned for that reason).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ ! -x node_modules/.bin/hardhat ] || [ ! -d node_modules/solc ]; then
    if [ -f package-lock.json ]; then
        npm ci --no-audit --no-fund
    else
        npm install --no-audit --no-fund
    fi
fi

node compile.js --check
echo "eth test setup ready: $(node_modules/.bin/hardhat --version 2>/dev/null | tail -n1) in $(pwd)"

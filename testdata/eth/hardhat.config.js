// Configuration of the dev node the contract-sync integration tests start
// (`npx hardhat node --hostname 127.0.0.1 --port <free port>`). No compilation happens
// through hardhat: the test contract is compiled by compile.js with solcjs.
module.exports = {
  networks: {
    hardhat: {
      // Room for bulk registrations (hundreds of ValidatorAdded events in one transaction).
      blockGasLimit: 120_000_000,
      allowUnlimitedContractSize: false,
      mining: { auto: true },
    },
  },
};

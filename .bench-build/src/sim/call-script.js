export {};
//# sourceMappingURL=call-script.js.map
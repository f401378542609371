export { FakeSwitch, defaultSwitch, placeCall } from './fake-switch.js';
export { parseDialString, targetKey } from './dial-string.js';
export { prng } from './util.js';
//# sourceMappingURL=switch.js.map
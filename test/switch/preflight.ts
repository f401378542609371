/**
 * `npm run test:switch` runs this first: with no FreeSWITCH at FS_TEST_ESL it prints one line
 * saying so and exits 1 (the suite never passes by skipping).
 */
import { EslClient } from './esl-client.js';
import { switchAddress } from './switch-address.js';
import { unreachable } from './harness.js';

try {
  const esl = await EslClient.connect(switchAddress(), 5000);
  const status = await esl.api('status');
  await esl.close();
  if (!/is ready/.test(status)) {
    process.stderr.write(
      `FreeSWITCH at ${process.env['FS_TEST_ESL'] || '127.0.0.1:8021'} answers but is not ready: ` +
        `${status.split('\n')[1] ?? status}\n`,
    );
    process.exit(1);
  }
} catch (err) {
  process.stderr.write(`${unreachable(err)}\n`);
  process.exit(1);
}

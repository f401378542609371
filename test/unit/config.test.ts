/** Variables the adapter no longer reads: warned about and ignored, never a reason not to start. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, retiredVariables } from '../../src/process/config.js';

const URL = 'http://127.0.0.1:3000/api/v1/cti/tok';

test('WORKERS set: one warning naming it and the fix; the configuration loads', () => {
  for (const value of ['1', '2', 'auto', 'nonsense']) {
    const env = { ZAMMAD_CTI_URL: URL, WORKERS: value };
    const [warning, ...more] = retiredVariables(env);
    assert.deepEqual(more, []);
    assert.match(warning ?? '', /^WORKERS is no longer read and is ignored: .*more instances.*Remove WORKERS/);
    assert.ok(!('WORKERS' in loadConfig(env)));
  }
});

test('WORKERS unset or empty (`WORKERS=` in .env): no warning', () => {
  assert.deepEqual(retiredVariables({ ZAMMAD_CTI_URL: URL }), []);
  assert.deepEqual(retiredVariables({ ZAMMAD_CTI_URL: URL, WORKERS: ' ' }), []);
});

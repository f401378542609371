/** The endpoints file (endpoints-file.ts) and which Zammad a call goes to (routing.ts). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EndpointsFileError, parseEndpoints } from '../../src/zammad/endpoints-file.js';
import { chooseEndpoint, choiceTable } from '../../src/zammad/endpoint-choice.js';
import { loadConfig, ConfigError } from '../../src/process/config.js';

const TOKEN = 'sEcReT-t0ken';
const url = (host: string) => `https://${host}/api/v1/cti/${TOKEN}`;
const parse = (data: unknown, allowHttp = false) =>
  parseEndpoints(JSON.stringify(data), '/etc/cti/endpoints.json', { allowHttp });

function problems(data: unknown, allowHttp = false): string[] {
  try {
    parse(data, allowHttp);
  } catch (err) {
    assert.ok(err instanceof EndpointsFileError);
    assert.ok(!err.message.includes(TOKEN), 'no token in the message');
    assert.match(err.message, /^ZAMMAD_ENDPOINTS_FILE \/etc\/cti\/endpoints\.json:/);
    return err.problems;
  }
  assert.fail('accepted');
}

describe('endpoints file', () => {
  test('the example of the issue parses; domains compared without case', () => {
    const endpoints = parse({
      endpoints: [
        { name: 'acme', url: url('zammad.acme.example'), domains: ['acme.example.com'] },
        { name: 'globex', url: url('help.globex.example'), domains: ['globex.example.com', 'Globex-2.example.com'] },
        { name: 'by-variable-only', url: url('z.example') },
      ],
    });
    assert.deepEqual(
      endpoints.map((e) => [e.name, e.domains]),
      [
        ['acme', ['acme.example.com']],
        ['globex', ['globex.example.com', 'globex-2.example.com']],
        ['by-variable-only', []],
      ],
    );
  });

  test('every bad entry is named by its index and name, with what is wrong', () => {
    assert.deepEqual(
      problems({
        endpoints: [
          { name: 'acme', url: url('a.example'), domains: ['acme.example.com'] },
          { name: 'globex', url: `https://g.example/api/v2/${TOKEN}`, domains: [] },
          { name: 'bad name', url: url('b.example') },
          { name: 'default', url: url('d.example') },
          { name: 'acme2', url: url('c.example'), domain: ['x'] },
        ],
      }),
      [
        'endpoints[1] "globex": url: must end in /api/v1/cti/<token> (copy it from Zammad → Admin → Integrations ' +
          '→ CTI (generic))',
        'endpoints[2] "bad name": name: must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit',
        'endpoints[3] "default": name: "default" is the name of ZAMMAD_CTI_URL\'s endpoint',
        'endpoints[4] "acme2": Unrecognized key: "domain"',
      ],
    );
  });

  test('names and domains are unique; plain http to another host needs ZAMMAD_ALLOW_HTTP', () => {
    const data = {
      endpoints: [
        { name: 'acme', url: url('a.example'), domains: ['shared.example'] },
        { name: 'acme', url: url('b.example') },
        { name: 'globex', url: `http://g.example/api/v1/cti/${TOKEN}`, domains: ['SHARED.example'] },
      ],
    };
    const found = problems(data);
    assert.deepEqual(found, [
      'endpoints[1] "acme": the name is also endpoints[0]\'s',
      'endpoints[2] "globex": url uses plain http:// to a host that is not loopback: the token would travel in clear text; use https:// or set ZAMMAD_ALLOW_HTTP=true',
      'endpoints[2] "globex": domain "shared.example" is also "acme"\'s',
    ]);
    assert.equal(problems(data, true).length, 2);
  });

  test('not JSON, not an object, no endpoints list', () => {
    assert.deepEqual(problems('{'), ['the file: Invalid input: expected object, received string']);
    assert.throws(() => parseEndpoints('{"endpoints": [', 'f.json', { allowHttp: false }), /not valid JSON/);
    assert.match(problems({ tenants: [] }).join(' | '), /endpoints: Invalid input: expected array/);
  });

  test('ZAMMAD_CTI_URL or ZAMMAD_ENDPOINTS_FILE: one of them is required, named with the other bad variables', () => {
    assert.equal(loadConfig({ ZAMMAD_ENDPOINTS_FILE: '/x.json' }).ZAMMAD_CTI_URL, undefined);
    assert.throws(
      () => loadConfig({ LOG_LEVEL: 'loud' }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.some((p) => p.startsWith('ZAMMAD_CTI_URL: is required (or ZAMMAD_ENDPOINTS_FILE)')) &&
        err.problems.some((p) => p.startsWith('LOG_LEVEL')),
    );
  });
});

describe('which Zammad a call goes to', () => {
  const table = choiceTable([
    { name: 'default', url: url('d.example'), domains: [] },
    { name: 'acme', url: url('a.example'), domains: ['acme.example.com'] },
    { name: 'globex', url: url('g.example'), domains: ['globex.example.com'] },
  ]);
  const noDefault = choiceTable([{ name: 'acme', url: url('a.example'), domains: ['acme.example.com'] }]);

  test('zammad_endpoint first, then domain_name, then ZAMMAD_CTI_URL', () => {
    assert.deepEqual(chooseEndpoint(table, { endpoint: 'globex', domain: 'acme.example.com' }), {
      kind: 'endpoint',
      name: 'globex',
      by: 'variable',
    });
    assert.deepEqual(chooseEndpoint(table, { domain: 'ACME.example.com ' }), {
      kind: 'endpoint',
      name: 'acme',
      by: 'domain',
    });
    assert.deepEqual(chooseEndpoint(table, { domain: 'initech.example' }), {
      kind: 'endpoint',
      name: 'default',
      by: 'default',
    });
    assert.deepEqual(chooseEndpoint(table, {}), { kind: 'endpoint', name: 'default', by: 'default' });
  });

  test("an unknown zammad_endpoint is not reported, not even to ZAMMAD_CTI_URL (another company's Zammad)", () => {
    assert.deepEqual(chooseEndpoint(table, { endpoint: 'acmee', domain: 'acme.example.com' }), {
      kind: 'none',
      why: 'unknown-endpoint',
      detail: 'acmee',
    });
  });

  test('without ZAMMAD_CTI_URL a call that matches nothing is not reported', () => {
    assert.deepEqual(chooseEndpoint(noDefault, { domain: 'initech.example' }), {
      kind: 'none',
      why: 'no-match',
      detail: 'initech.example',
    });
    assert.deepEqual(chooseEndpoint(noDefault, {}), { kind: 'none', why: 'no-match', detail: '' });
    assert.deepEqual(chooseEndpoint(noDefault, { endpoint: '  ', domain: 'acme.example.com' }), {
      kind: 'endpoint',
      name: 'acme',
      by: 'domain',
    });
  });
});

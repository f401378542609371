import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WITHHELD, callerNumber, safeCallerId, toE164Digits, type NumberRules } from '../../src/call/numbers.js';

const DE: NumberRules = { defaultCountryCode: '49', extensionMaxDigits: 6 };

type Row = readonly [input: string, expected: string, why: string];

function table(rows: readonly Row[], rules: NumberRules = DE): void {
  for (const [input, expected, why] of rows) {
    it(
      `${JSON.stringify(input.length > 60 ? `${input.slice(0, 60)}…` : input)} -> ` +
        `${JSON.stringify(expected)} (${why})`,
      () => {
        assert.equal(toE164Digits(input, rules), expected);
      },
    );
  }
}

describe('toE164Digits', () => {
  describe('German numbers in every notation', () => {
    table([
      ['030 5557 1600', '493055571600', 'national with spaces'],
      ['030-5557-1600', '493055571600', 'national with dashes'],
      ['(030) 5557 1600', '493055571600', 'area code in parentheses'],
      ['030/55571600', '493055571600', 'slash'],
      ['030.5557.1600', '493055571600', 'dots'],
      ['03055571600', '493055571600', 'national, compact'],
      ['0049305557 1600', '493055571600', 'international prefix 00'],
      ['0049 30 5557-1600', '493055571600', '00 with separators'],
      ['0049 030 55571600', '493055571600', '00 and a stray national prefix'],
      ['+49 30 55571600', '493055571600', 'E.164 with spaces'],
      ['+493055571600', '493055571600', 'E.164'],
      ['+49 (0) 30 55571600', '493055571600', '+49 (0) notation'],
      ['+49 (0)30-5557-1600', '493055571600', '+49 (0) notation, dashes'],
      ['+49-30-5557-1600', '493055571600', 'E.164 with dashes'],
      ['493055571600', '493055571600', 'already E.164 without +'],
      ['  030 5557 1600\t', '493055571600', 'surrounding whitespace'],
      ['030 5557 1600', '493055571600', 'no-break spaces'],
      ['0171 1234567', '491711234567', 'mobile'],
      ['+49 171 1234567', '491711234567', 'mobile, E.164'],
      ['3055571600', '493055571600', 'national without trunk prefix (not a valid foreign number)'],
      ['6912345678', '496912345678', 'Frankfurt without trunk prefix, not Micronesia +691 (needs /max)'],
      ['+030 5557 1600', '493055571600', "'+' in front of a dialled prefix is read as dialled"],
    ]);
  });

  describe('foreign numbers', () => {
    table([
      ['0041 44 668 18 00', '41446681800', 'Swiss via 00'],
      ['+41 44 668 18 00', '41446681800', 'Swiss E.164'],
      ['41446681800', '41446681800', 'Swiss E.164 without + (international reading first)'],
      ['+1 212 555 0100', '12125550100', 'US E.164'],
      ['+1 (212) 555-0100', '12125550100', 'US with punctuation'],
      ['001 212 555 0100', '12125550100', 'US via 00'],
      ['12125550100', '12125550100', 'US E.164 without +'],
      ['+44 20 7946 0958', '442079460958', 'UK'],
      ['0044 20 7946 0958', '442079460958', 'UK via 00'],
      ['+33 1 23 45 67 89', '33123456789', 'France'],
    ]);
  });

  describe('numbers libphonenumber cannot validate still give digits', () => {
    table([
      ['0800 1234567', '498001234567', 'service number 0800 (valid)'],
      ['0800 123456', '49800123456', 'service number 0800 with a short subscriber part: prefix stripped, 49 prepended'],
      ['0180 5 123456', '491805123456', 'shared-cost 0180'],
      ['030 5557', '49305557', 'very short German number'],
      ['030 55571600 123456', '493055571600123456', 'German number of unusual length (long direct-dial extension)'],
      [
        '01013 030 55571600',
        '49101303055571600',
        'carrier-selection prefix kept, national prefix stripped, 49 prepended',
      ],
      ['0041 44 668 18 00 99', '4144668180099', 'foreign number of unusual length via 00: 00 dropped'],
      ['00999 123456', '999123456', 'unknown calling code via 00: 00 dropped'],
      ['+999 123456', '999123456', 'unknown calling code with +: digits kept'],
      ['4930555716001234', '4930555716001234', 'already 49… form of unusual length: kept'],
      ['4912345', '4912345', 'short 49… form: kept, 49 not prepended twice'],
      ['491711234567890', '491711234567890', '49… form of a long mobile number: kept'],
      ['123456789', '123456789', 'unprefixed, neither reading valid: kept as is'],
      [`0${'3'.repeat(18)}`, `49${'3'.repeat(18)}`, 'too long for libphonenumber: stripped by hand'],
    ]);
  });

  describe('extensions and short numbers stay as they are', () => {
    table([
      ['2003', '2003', 'extension'],
      ['20', '20', 'two-digit extension'],
      ['200301', '200301', 'six digits = extensionMaxDigits'],
      ['110', '110', 'emergency number'],
      ['sip:2003@pbx.example.com', '2003', 'extension as SIP URI'],
      ['0', '0', 'operator'],
    ]);
    it('a number longer than extensionMaxDigits is not an extension', () => {
      assert.equal(toE164Digits('2003', { defaultCountryCode: '49', extensionMaxDigits: 3 }), '2003');
      assert.equal(toE164Digits('0305557', { defaultCountryCode: '49', extensionMaxDigits: 3 }), '49305557');
      assert.equal(toE164Digits('0305557', { defaultCountryCode: '49', extensionMaxDigits: 7 }), '0305557');
    });
  });

  describe('SIP and tel URIs', () => {
    table([
      ['sip:+493055571600@carrier.example;user=phone', '493055571600', 'sip: with @host and ;params'],
      ['sips:03055571600@10.0.0.1:5061;transport=tls', '493055571600', 'sips:'],
      ['SIP:0049305557 1600@host', '493055571600', 'upper-case scheme'],
      ['tel:+49-30-5557-1600', '493055571600', 'tel: URI with dashes'],
      ['tel:+493055571600;phone-context=example.com', '493055571600', 'tel: URI with params'],
      ['"Alice Example" <sip:+493055571600@host>', '493055571600', 'name-addr'],
      ['<sip:030-5557-1600@host;user=phone>', '493055571600', 'angle brackets'],
      ['sip:%2B493055571600@host', '493055571600', 'percent-encoded +'],
      ['+493055571600@host', '493055571600', 'no scheme, @host'],
      ['0305557160;ext=12', '49305557160', ';params on a plain number'],
    ]);
  });

  describe("junk gives ''", () => {
    table([
      ['', '', 'empty'],
      ['   ', '', 'blank'],
      ['+', '', 'plus only'],
      ['+1', '', 'plus and one digit'],
      ['+12', '', 'plus and two digits'],
      ['abc', '', 'letters'],
      ['anonymous', '', 'a word'],
      ['sip:anonymous@anonymous.invalid', '', 'anonymous SIP URI'],
      ['030 5557 1600 abc', '', 'trailing letters'],
      ['0305557x1600', '', 'letter in the middle'],
      ['*97', '', 'feature code'],
      ['12#', '', 'hash'],
      ['49+30', '', 'plus in the middle'],
      ['++4930', '', 'double plus'],
      ['sip:@host', '', 'empty user part'],
      ['sip:%0A@host', '', 'encoded newline'],
      ['sip:2003%0AEvent-UUID:%20x@host', '', 'encoded header injection'],
    ]);
    it('a very long digit string is not a number', () => {
      assert.equal(toE164Digits('9'.repeat(40), DE), '');
      assert.equal(toE164Digits(`+${'4'.repeat(30)}`, DE), '');
      assert.equal(toE164Digits(`0${'3'.repeat(30)}`, DE), '');
    });
    it('a huge input does not throw and gives ""', () => {
      assert.equal(toE164Digits('1'.repeat(100_000), DE), '');
      assert.equal(toE164Digits(`sip:${'a'.repeat(100_000)}@x`, DE), '');
    });
    it('never throws on values that are not strings at runtime', () => {
      for (const v of [undefined, null, 42, {}, []]) {
        assert.equal(toE164Digits(v as unknown as string, DE), '');
      }
    });
  });

  describe('other default countries', () => {
    it('US: national 10 digits and 011 international prefix', () => {
      const US: NumberRules = { defaultCountryCode: '1', extensionMaxDigits: 4 };
      assert.equal(toE164Digits('(212) 555-0100', US), '12125550100');
      assert.equal(toE164Digits('1 212 555 0100', US), '12125550100');
      assert.equal(toE164Digits('011 49 30 55571600', US), '493055571600');
    });
    it('Switzerland: 0 national prefix', () => {
      const CH: NumberRules = { defaultCountryCode: '41', extensionMaxDigits: 4 };
      assert.equal(toE164Digits('044 668 18 00', CH), '41446681800');
      assert.equal(toE164Digits('0049 30 55571600', CH), '493055571600');
    });
  });
});

describe('callerNumber', () => {
  const withheld: readonly string[] = [
    '',
    '   ',
    'anonymous',
    'Anonymous',
    'ANONYMOUS',
    'unknown',
    'Unknown',
    'restricted',
    'RESTRICTED',
    'private',
    'Private',
    'unavailable',
    'Unavailable',
    'withheld',
    '0000000000',
    '0',
    '000',
    '+000000',
    'sip:anonymous@anonymous.invalid',
    'SIP:Anonymous@anonymous.invalid;user=phone',
    '"Anonymous" <sip:anonymous@anonymous.invalid>',
    'sip:restricted@host',
    'sip:0000000000@host',
    'tel:unknown',
    'abc',
    'sip:alice@example.com',
  ];
  for (const raw of withheld) {
    it(`${JSON.stringify(raw)} -> anonymous`, () => {
      assert.equal(callerNumber(raw, false, DE), WITHHELD);
    });
  }
  it('undefined -> anonymous', () => {
    assert.equal(callerNumber(undefined, false, DE), 'anonymous');
  });
  it('a real number with the privacy flag set -> anonymous', () => {
    assert.equal(callerNumber('493055571601', true, DE), 'anonymous');
    assert.equal(callerNumber('+49 30 55571601', true, DE), 'anonymous');
    assert.equal(callerNumber('2003', true, DE), 'anonymous');
  });
  it('a real number without the flag -> the normalised number', () => {
    assert.equal(callerNumber('493055571601', false, DE), '493055571601');
    assert.equal(callerNumber('030 5557 1601', false, DE), '493055571601');
    assert.equal(callerNumber('sip:+493055571601@carrier;user=phone', false, DE), '493055571601');
    assert.equal(callerNumber('0041 44 668 18 00', false, DE), '41446681800');
  });
  it('an extension stays an extension', () => {
    assert.equal(callerNumber('2003', false, DE), '2003');
    assert.equal(callerNumber('sip:2003@pbx', false, DE), '2003');
  });
  it('a number that merely contains zeros is not withheld', () => {
    assert.equal(callerNumber('0049 30 0000000', false, DE), '49300000000');
    assert.equal(callerNumber('1000', false, DE), '1000');
  });
  it('WITHHELD is the string Zammad expects', () => {
    assert.equal(WITHHELD, 'anonymous');
  });
});

describe('safeCallerId', () => {
  const accepted: readonly (readonly [string, string])[] = [
    ['4930777000000', 'E.164 without +'],
    ['+4930777000000', 'E.164 with + (kept)'],
    ['123', 'shortest accepted (3 digits)'],
    ['+123', 'shortest with +'],
    ['+123456789012345', '+ and 15 digits (E.164 maximum)'],
    ['004930777000000', 'with international prefix 00'],
    ['0011' + '123456789012345', 'no +: 19 digits (4-digit international prefix + 15)'],
    ['2003', 'an extension'],
  ];
  for (const [value, why] of accepted) {
    it(`accepts ${JSON.stringify(value)} (${why})`, () => {
      assert.equal(safeCallerId(value), value);
    });
  }
  const rejected: readonly (readonly [unknown, string])[] = [
    ['', 'empty'],
    ['+', 'plus only'],
    ['12', 'too short'],
    ['+12', 'too short with +'],
    ['+1234567890123456', '+ and 16 digits: longer than E.164'],
    ['12345678901234567890', '20 digits without +'],
    ['9'.repeat(1000), 'very long'],
    ['49307770abc', 'letters'],
    ['abc', 'letters only'],
    ['4930 777000000', 'space'],
    [' 4930777000000', 'leading space'],
    ['4930777000000 ', 'trailing space'],
    ['4930777000000\n', 'trailing newline'],
    ['x\nEvent-UUID: y', 'header injection'],
    ['4930777\nEvent-UUID: y', 'header injection after digits'],
    ['4930777000000\r\n\r\nsendmsg', 'CRLF injection'],
    ['%0A4930777000000', 'encoded newline'],
    ['4930777%0A', 'encoded newline after digits'],
    ['4930777;user=phone', 'semicolon'],
    ['4930-777-000', 'dashes'],
    ['(030)777000', 'parentheses'],
    ['++4930777000000', 'double plus'],
    ['4930777000000+', 'plus at the end'],
    ['sip:4930777000000@host', 'SIP URI'],
    ['٤٩٣٠٧٧٧٠٠٠', 'non-ASCII digits'],
    [4930777000000, 'a number (JSON number)'],
    [null, 'null'],
    [undefined, 'undefined'],
    [true, 'boolean'],
    [['4930777000000'], 'array'],
    [{ callerId: '4930777000000' }, 'object'],
  ];
  for (const [value, why] of rejected) {
    it(`rejects ${why}`, () => {
      assert.equal(safeCallerId(value), null);
    });
  }
});

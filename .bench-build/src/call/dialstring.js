/**
 * FreeSWITCH dial strings, read only as far as the adapter needs: which `user/EXT@domain`
 * targets a bridge rings (their directory names are Zammad's user[]), and which of them won.
 * FreeSWITCH itself expands the variables and places the calls; we never rewrite the string.
 */
/** Expands `${name}` with the channel's own values, the way FreeSWITCH would; unknown names stay as they are. */
export function expandVariables(dial, lookup) {
    return dial.replace(/\$\{([A-Za-z0-9_.-]+)\}/g, (whole, name) => lookup(name) ?? whole);
}
/** Splits at top-level `,` (ring at once), `|` (one after another) and `:_:` (enterprise), outside {} [] <>. */
function splitTargets(dial) {
    const out = [];
    let depth = 0;
    let start = 0;
    for (let i = 0; i < dial.length; i++) {
        const c = dial[i];
        if (c === '{' || c === '[' || c === '<')
            depth++;
        else if ((c === '}' || c === ']' || c === '>') && depth > 0)
            depth--;
        else if (depth === 0 && (c === ',' || c === '|')) {
            out.push(dial.slice(start, i));
            start = i + 1;
        }
        else if (depth === 0 && dial.startsWith(':_:', i)) {
            out.push(dial.slice(start, i));
            start = i + 3;
            i += 2;
        }
    }
    out.push(dial.slice(start));
    return out;
}
/** Drops leading `{…}`, `[…]` and `<…>` variable blocks. */
function stripVariableBlocks(target) {
    let t = target.trim();
    for (;;) {
        const m = /^(\{[^}]*\}|\[[^\]]*\]|<[^>]*>)/.exec(t);
        if (!m)
            return t;
        t = t.slice(m[0].length).trim();
    }
}
export function parseDialString(dial) {
    const targets = [];
    for (const raw of splitTargets(dial)) {
        const t = stripVariableBlocks(raw);
        if (t.length === 0)
            continue;
        const parts = t.split('/');
        const endpoint = parts[0]?.toLowerCase();
        if (endpoint === 'user' && parts[1]) {
            const [ext, domain] = parts[1].split('@');
            if (ext)
                targets.push({ number: ext, directoryId: domain ? `${ext}@${domain}` : ext });
        }
        else if (endpoint === 'loopback' && parts[1]) {
            targets.push({ number: parts[1] });
        }
        else if (parts.length >= 2) {
            // sofia/gateway/<gw>/<number>, sofia/<profile>/<number>@<host>, freetdm/…/<number>
            const last = parts[parts.length - 1] ?? '';
            const number = last.split('@')[0]?.split(';')[0] ?? '';
            if (number)
                targets.push({ number });
        }
    }
    return targets;
}
//# sourceMappingURL=dialstring.js.map
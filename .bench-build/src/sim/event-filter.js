export function passesFilters(filters, get) {
    if (filters.length === 0)
        return true;
    let send = false;
    for (const [name, raw] of filters) {
        const value = get(name);
        if (value === undefined)
            continue;
        let compare = raw;
        let positive = true;
        while (compare.length > 0 && (compare[0] === '+' || compare[0] === '-' || compare[0] === ' ')) {
            if (compare[0] === '+')
                positive = true;
            else if (compare[0] === '-')
                positive = false;
            compare = compare.slice(1);
        }
        if (send && positive)
            continue;
        const hit = raw.startsWith('/') ? new RegExp(compare.replace(/^\/|\/$/g, '')).test(value) : value.toLowerCase() === compare.toLowerCase();
        if (hit) {
            if (positive)
                send = true;
            else
                return false;
        }
    }
    return send;
}
//# sourceMappingURL=event-filter.js.map
/**
 * mod_event_socket.c event_handler(), the filter loop: once a listener has filters, an event is
 * sent only when a positive filter matches a header it carries and no negative one (a value
 * starting with `-`) matched first; a value starting with `/` is a regular expression; headers
 * are looked up case-insensitively (switch_event_get_header), values compared case-insensitively.
 */
export type EventFilter = readonly [header: string, value: string];

export function passesFilters(filters: readonly EventFilter[], get: (header: string) => string | undefined): boolean {
  if (filters.length === 0) return true;
  let send = false;
  for (const [name, raw] of filters) {
    const value = get(name);
    if (value === undefined) continue;
    let compare = raw;
    let positive = true;
    while (compare.length > 0 && (compare[0] === '+' || compare[0] === '-' || compare[0] === ' ')) {
      if (compare[0] === '+') positive = true;
      else if (compare[0] === '-') positive = false;
      compare = compare.slice(1);
    }
    if (send && positive) continue;
    const hit = raw.startsWith('/')
      ? new RegExp(compare.replace(/^\/|\/$/g, '')).test(value)
      : value.toLowerCase() === compare.toLowerCase();
    if (hit) {
      if (positive) send = true;
      else return false;
    }
  }
  return send;
}

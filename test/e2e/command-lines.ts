/**
 * What the adapter sent the switch, one line a command: `sendmsg execute bridge <arg>`, `sendmsg hangup <cause>`, `api
 * …`, `linger`.
 */
export interface SentCommand {
  readonly name: string;
  readonly args: string;
  readonly headers: Record<string, string>;
}

export function commandLines(commands: readonly SentCommand[]): string[] {
  return commands.map((c) => {
    if (c.name !== 'sendmsg') return [c.name, c.args].filter(Boolean).join(' ');
    const h = c.headers;
    if (h['call-command'] === 'execute')
      return `sendmsg execute ${h['execute-app-name']} ${h['execute-app-arg'] ?? ''}`.trim();
    if (h['call-command'] === 'hangup') return `sendmsg hangup ${h['hangup-cause']}`;
    return `sendmsg ${JSON.stringify(h)}`;
  });
}

/** Topic and subject mapping shared by sources, kept free of client libraries so it loads instantly. */

/** Subscription filter from a topic template: `{runId}` filled in, any level with another placeholder → `+`. */
export function filterFromTemplate(template: string, runId: string): string {
  return template
    .split('/')
    .map((level) => {
      const filled = level.replaceAll('{runId}', runId);
      return /\{[A-Za-z]+(?::\d+)?\}/.test(filled) ? '+' : filled;
    })
    .join('/');
}

/** NATS subject (filter) from an MQTT topic (filter), as nats-server's MQTT listener maps them. */
export function subjectFromMqtt(topic: string): string {
  return topic
    .split('/')
    .map((level) => {
      if (level === '+') return '*';
      if (level === '#') return '>';
      if (level === '') return '/';
      return level.replaceAll('.', '//');
    })
    .join('.');
}

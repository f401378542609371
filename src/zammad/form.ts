/**
 * A CTI post as Zammad's endpoint wants it: form-encoded, `user[]` repeated on newCall, `user` a single string on
 * answer.
 */
import type { CtiPost } from '../call/flow.js';

export function formBody(post: CtiPost): string {
  const form = new URLSearchParams();
  form.append('event', post.event);
  form.append('from', post.from);
  form.append('to', post.to);
  form.append('direction', post.direction);
  form.append('callId', post.callId);
  if (post.queue !== undefined) form.append('queue', post.queue);
  switch (post.event) {
    case 'newCall':
      for (const user of post.users) form.append('user[]', user);
      break;
    case 'answer':
      // An array here can make Zammad fail with a 500 after it stored the answer.
      if (post.user !== undefined) form.append('user', post.user);
      if (post.userId !== undefined) form.append('user_id', post.userId);
      form.append('answeringNumber', post.answeringNumber);
      break;
    case 'hangup':
      form.append('cause', post.cause);
      if (post.answeringNumber !== undefined) form.append('answeringNumber', post.answeringNumber);
      break;
  }
  return form.toString();
}

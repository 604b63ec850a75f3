import test from 'ava';
import { RequestGuard } from '../../src/dashboard/request-guard.ts';

const guard = new RequestGuard(['127.0.0.1:8765', 'localhost:8765'], 'session-token');

test('every request must name this dashboard in Host (against DNS rebinding)', (t) => {
  t.true(guard.checkHost('127.0.0.1:8765').ok);
  t.true(guard.checkHost('LOCALHOST:8765').ok);
  const rebound = guard.checkHost('evil.example:8765');
  t.false(rebound.ok);
  t.is(rebound.status, 421);
  t.regex(rebound.reason, /answers only as 127\.0\.0\.1:8765 or localhost:8765/);
  t.false(guard.checkHost(undefined).ok);
});

test('a write needs this origin and the session token', (t) => {
  const host = '127.0.0.1:8765';
  t.true(guard.checkWrite({ host, origin: 'http://127.0.0.1:8765', token: 'session-token' }).ok);
  const foreign = guard.checkWrite({ host, origin: 'http://evil.example', token: 'session-token' });
  t.is(foreign.status, 403);
  t.regex(foreign.reason, /cross-site request refused: Origin 'http:\/\/evil.example'/);
  t.is(guard.checkWrite({ host, token: 'session-token' }).status, 403, 'no Origin header');
  const wrongToken = guard.checkWrite({ host, origin: 'http://127.0.0.1:8765', token: 'session-tokem' });
  t.is(wrongToken.status, 403);
  t.regex(wrongToken.reason, /session's token; reload the page/);
  t.is(guard.checkWrite({ host, origin: 'http://127.0.0.1:8765' }).status, 403, 'no token');
  t.is(
    guard.checkWrite({ host: 'localhost:8765', origin: 'http://127.0.0.1:8765', token: 'session-token' }).status,
    403,
    'Origin must match the Host the request came to',
  );
});

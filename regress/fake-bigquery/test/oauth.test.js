'use strict';
// The OAuth token endpoint (jwt-bearer and refresh_token grants), the
// metadata server route, issuedOnly token checking and failure injection.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const h = require('./helpers');

const EMAIL = 'sa@test-project.iam.gserviceaccount.com';
const SCOPE = 'https://www.googleapis.com/auth/bigquery';
const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });

let srv;
let endpoint;
test.before(async () => {
  srv = await h.withFake();
  endpoint = `http://127.0.0.1:${srv.httpPort}/token`;
});
test.after(() => srv.close());
test.beforeEach(async () => {
  await h.ctl(srv, 'POST', '/reset');
  const r = await h.ctl(srv, 'POST', '/oauth', {
    serviceAccounts: [{ clientEmail: EMAIL, keyId: 'k1', publicKey: publicKey.export({ type: 'spki', format: 'pem' }) }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
});

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

function jwt(claims = {}, { key = privateKey, header = {} } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const c = {
    iss: EMAIL, scope: SCOPE, aud: endpoint, iat: now, exp: now + 3600, ...claims,
  };
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'k1', ...header })}.${b64(c)}`;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

async function post(form, path = '/token') {
  const res = await fetch(`http://127.0.0.1:${srv.httpPort}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, body: await res.json() };
}

const grant = (assertion) => post({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion });

test('jwt-bearer: a correctly signed JWT gets a token the REST API accepts', async () => {
  const r = await grant(jwt());
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.match(r.body.access_token, /^ya29\.fake-/);
  assert.equal(r.body.expires_in, 3600);
  assert.equal(r.body.token_type, 'Bearer');
  await h.ctl(srv, 'POST', '/oauth', { issuedOnly: true });
  assert.equal((await h.rest(srv, 'GET', '/datasets/none', undefined, { token: r.body.access_token })).status, 404);
  assert.equal((await h.rest(srv, 'GET', '/datasets/none', undefined, { token: 'made-up' })).status, 401);
  const view = (await h.ctl(srv, 'GET', '/oauth')).body;
  assert.deepEqual(view.issued.map((t) => [t.via, t.subject]), [['jwt', EMAIL]]);
  assert.equal(view.config.serviceAccounts[0].publicKey, undefined);
});

test('jwt-bearer: bad signature, unknown account, wrong aud, scope, lifetime, alg', async () => {
  const now = Math.floor(Date.now() / 1000);
  const cases = [
    [jwt({}, { key: other.privateKey }), 400, 'invalid_grant', /Signature/],
    [jwt({}, { header: { kid: 'other' } }), 400, 'invalid_grant', /Signature/],
    [jwt({ iss: 'nobody@x' }), 400, 'invalid_grant', /account not found/],
    [jwt({ aud: 'https://oauth2.googleapis.com/token' }), 400, 'invalid_grant', /aud/],
    [jwt({ scope: undefined }), 400, 'invalid_scope', /scope/],
    [jwt({ scope: 'https://www.googleapis.com/auth/drive' }), 400, 'invalid_scope', /scope/],
    [jwt({ exp: now + 3601 }), 400, 'invalid_grant', /short-lived/],
    [jwt({ iat: now - 4000, exp: now - 400 }), 400, 'invalid_grant', /short-lived/],
    [jwt({ iat: now + 1000, exp: now + 2000 }), 400, 'invalid_grant', /short-lived/],
    [jwt({}, { header: { alg: 'HS256' } }), 400, 'invalid_grant', /RS256/],
    ['not-a-jwt', 400, 'invalid_request', /three/],
  ];
  for (const [assertion, status, error, desc] of cases) {
    const r = await grant(assertion);
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(r.body.error, error);
    assert.match(r.body.error_description, desc);
  }
  const r = await post({ grant_type: 'password' });
  assert.equal(r.body.error, 'unsupported_grant_type');
  assert.equal((await h.ctl(srv, 'GET', '/oauth')).body.issued.length, 0);
});

test('refresh_token grant for authorized_user credentials', async () => {
  await h.ctl(srv, 'POST', '/oauth', { users: [{ clientId: 'cid', clientSecret: 'sec', refreshToken: 'rt' }] });
  const ok = await post({ grant_type: 'refresh_token', client_id: 'cid', client_secret: 'sec', refresh_token: 'rt' });
  assert.equal(ok.status, 200);
  const badClient = await post({ grant_type: 'refresh_token', client_id: 'cid', client_secret: 'x', refresh_token: 'rt' });
  assert.deepEqual([badClient.status, badClient.body.error], [401, 'invalid_client']);
  const badToken = await post({ grant_type: 'refresh_token', client_id: 'cid', client_secret: 'sec', refresh_token: 'x' });
  assert.deepEqual([badToken.status, badToken.body.error], [400, 'invalid_grant']);
});

test('metadata server: needs Metadata-Flavor: Google; can be switched off', async () => {
  const url = `http://127.0.0.1:${srv.httpPort}/computeMetadata/v1/instance/service-accounts/default/token`;
  assert.equal((await fetch(url)).status, 403);
  const res = await fetch(url, { headers: { 'Metadata-Flavor': 'Google' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('metadata-flavor'), 'Google');
  assert.match((await res.json()).access_token, /^ya29\./);
  await h.ctl(srv, 'POST', '/oauth', { metadata: false });
  assert.equal((await fetch(url, { headers: { 'Metadata-Flavor': 'Google' } })).status, 404);
});

test('issuedOnly: a token stops being accepted when it expires', async () => {
  await h.ctl(srv, 'POST', '/oauth', { expiresIn: 1, issuedOnly: true });
  const r = await grant(jwt());
  assert.equal(r.body.expires_in, 1);
  assert.equal((await h.rest(srv, 'GET', '/datasets/none', undefined, { token: r.body.access_token })).status, 404);
  await new Promise((resolve) => { setTimeout(resolve, 1100); });
  assert.equal((await h.rest(srv, 'GET', '/datasets/none', undefined, { token: r.body.access_token })).status, 401);
});

test('fail: the next requests fail with the given status, then tokens flow again', async () => {
  await h.ctl(srv, 'POST', '/oauth', { fail: { times: 2, status: 503 } });
  assert.equal((await grant(jwt())).status, 503);
  const second = await grant(jwt());
  assert.deepEqual([second.status, second.body.error], [503, 'temporarily_unavailable']);
  assert.equal((await grant(jwt())).status, 200);
  assert.deepEqual((await h.ctl(srv, 'GET', '/oauth')).body.counts.token, { 503: 2, 200: 1 });
  const bad = await h.ctl(srv, 'POST', '/oauth', { fail: { times: 0 } });
  assert.equal(bad.status, 400);
  assert.equal((await h.ctl(srv, 'POST', '/oauth', { serviceAccounts: [{ clientEmail: 'x', publicKey: 'nope' }] })).status, 400);
});

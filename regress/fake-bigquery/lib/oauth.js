'use strict';
// Google's token sources, faked on the HTTP port (README.md, "OAuth"):
//
//   POST /token                 the OAuth 2.0 token endpoint: the jwt-bearer
//                               grant (a service account's RS256-signed JWT,
//                               verified against its registered public key)
//                               and the refresh_token grant (authorized_user)
//   GET  /computeMetadata/v1/instance/service-accounts/default/token
//                               the GCE metadata server (Metadata-Flavor: Google)
//   /_fake/oauth                control: register keys, set token lifetime,
//                               inject failures, list issued tokens
//
// Tokens it issues are short-lived on request (expiresIn), so a client's
// refresh can be watched; with issuedOnly the fake's REST and gRPC APIs
// accept only issued tokens that have not expired.

const crypto = require('crypto');

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ACCEPTED_SCOPES = ['https://www.googleapis.com/auth/bigquery', 'https://www.googleapis.com/auth/cloud-platform'];
const METADATA_TOKEN_PATH = '/computeMetadata/v1/instance/service-accounts/default/token';
const MAX_LIFETIME_S = 3600; // Google's limit for exp - iat
const CLOCK_SKEW_S = 300; // how far in the future iat may be
const MAX_BODY = 64 * 1024;

// A token-endpoint error in Google's OAuth shape.
class OAuthError extends Error {
  constructor(status, error, description) {
    super(description);
    this.status = status;
    this.error = error;
  }
}

function b64urlJson(part, what) {
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v;
  } catch (e) {
    throw new OAuthError(400, 'invalid_grant', `Invalid JWT: the ${what} is not base64url-encoded JSON`);
  }
}

class OAuth {
  constructor(fake) {
    this.fake = fake;
    this.timers = new Set();
    this.reset();
  }

  reset() {
    if (this.config && this.config.issuedOnly) this.fake.config.acceptTokens = this.fake.defaults.acceptTokens;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.config = {
      serviceAccounts: [], // [{clientEmail, publicKey (PEM), keyId?}]
      users: [], // [{clientId, clientSecret, refreshToken}]
      expiresIn: 3600, // seconds, for every token issued
      metadata: true, // serve the metadata route (false: 404, as off Google Cloud)
      issuedOnly: false, // accept only issued, unexpired tokens on REST and gRPC
    };
    this.fail = null; // {times, status, error, description}
    this.issued = []; // [{token, via, subject, issued, expiresIn, expires}]
    this.counts = { token: {}, metadata: {} }; // responses by HTTP status
  }

  view() {
    return {
      config: {
        ...this.config,
        serviceAccounts: this.config.serviceAccounts.map(({ clientEmail, keyId }) => ({ clientEmail, keyId })),
        users: this.config.users.map(({ clientId }) => ({ clientId })),
      },
      fail: this.fail,
      issued: this.issued,
      counts: this.counts,
    };
  }

  // POST /_fake/oauth. Throws Error (a 400) on bad values.
  setConfig(c) {
    if (c.serviceAccounts !== undefined) {
      if (!Array.isArray(c.serviceAccounts)) throw new Error('serviceAccounts must be a list');
      this.config.serviceAccounts = c.serviceAccounts.map((a) => {
        if (!a || typeof a.clientEmail !== 'string' || typeof a.publicKey !== 'string') {
          throw new Error('each service account needs clientEmail and publicKey (PEM)');
        }
        let key;
        try {
          key = crypto.createPublicKey(a.publicKey);
        } catch (e) {
          throw new Error(`publicKey of ${a.clientEmail}: ${e.message}`);
        }
        if (key.asymmetricKeyType !== 'rsa') throw new Error(`publicKey of ${a.clientEmail} is not an RSA key`);
        return { clientEmail: a.clientEmail, publicKey: a.publicKey, keyId: a.keyId || null, key };
      });
    }
    if (c.users !== undefined) {
      if (!Array.isArray(c.users) || !c.users.every((u) => u && ['clientId', 'clientSecret', 'refreshToken'].every((k) => typeof u[k] === 'string' && u[k]))) {
        throw new Error('users must be a list of {clientId, clientSecret, refreshToken}');
      }
      this.config.users = c.users.map(({ clientId, clientSecret, refreshToken }) => ({ clientId, clientSecret, refreshToken }));
    }
    if (c.expiresIn !== undefined) {
      if (!Number.isInteger(c.expiresIn) || c.expiresIn < 1) throw new Error('expiresIn must be a positive integer (seconds)');
      this.config.expiresIn = c.expiresIn;
    }
    if (c.metadata !== undefined) {
      if (typeof c.metadata !== 'boolean') throw new Error('metadata must be true or false');
      this.config.metadata = c.metadata;
    }
    if (c.issuedOnly !== undefined) {
      if (typeof c.issuedOnly !== 'boolean') throw new Error('issuedOnly must be true or false');
      if (this.config.issuedOnly && !c.issuedOnly) this.fake.config.acceptTokens = this.fake.defaults.acceptTokens;
      this.config.issuedOnly = c.issuedOnly;
      this.syncAcceptTokens();
    }
    if (c.fail !== undefined) {
      const f = c.fail;
      if (f === null) this.fail = null;
      else if (f && Number.isInteger(f.times) && f.times > 0 && (f.status === undefined || (Number.isInteger(f.status) && f.status >= 400 && f.status <= 599))) {
        this.fail = {
          times: f.times,
          status: f.status || 503,
          error: typeof f.error === 'string' ? f.error : 'temporarily_unavailable',
          description: typeof f.description === 'string' ? f.description : 'The service is currently unavailable.',
        };
      } else throw new Error('fail must be null or {times, status?: 400-599, error?, description?}');
    }
    return this.view();
  }

  // With issuedOnly, the fake's acceptTokens is exactly the unexpired issued
  // tokens (a fresh array: the command-line default list is never mutated),
  // brought up to date again when the next of them expires.
  syncAcceptTokens() {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (!this.config.issuedOnly) return;
    const now = Date.now();
    const live = this.issued.filter((t) => Date.parse(t.expires) > now);
    this.fake.config.acceptTokens = live.map((t) => t.token);
    if (live.length === 0) return;
    const next = Math.min(...live.map((t) => Date.parse(t.expires)));
    const timer = setTimeout(() => this.syncAcceptTokens(), next - now + 1);
    timer.unref();
    this.timers.add(timer);
  }

  issue(via, subject) {
    const token = `ya29.fake-${crypto.randomBytes(24).toString('base64url')}`;
    const now = Date.now();
    const expiresIn = this.config.expiresIn;
    this.issued.push({
      token, via, subject, issued: new Date(now).toISOString(), expiresIn, expires: new Date(now + expiresIn * 1000).toISOString(),
    });
    this.syncAcceptTokens();
    return { access_token: token, expires_in: expiresIn, token_type: 'Bearer' };
  }

  // An armed failure consumes one request; throws it as an OAuthError.
  maybeFail() {
    if (!this.fail) return;
    const f = this.fail;
    f.times -= 1;
    if (f.times <= 0) this.fail = null;
    throw new OAuthError(f.status, f.error, f.description);
  }

  // POST /token with a form body.
  token(form, endpoint) {
    this.maybeFail();
    const grant = form.get('grant_type');
    if (grant === JWT_BEARER) return this.jwtGrant(form.get('assertion'), endpoint);
    if (grant === 'refresh_token') return this.refreshGrant(form);
    throw new OAuthError(400, 'unsupported_grant_type', `Invalid grant_type: ${grant || ''}`);
  }

  // The service-account flow: every check Google documents for the JWT.
  jwtGrant(assertion, endpoint) {
    const parts = (assertion || '').split('.');
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) {
      throw new OAuthError(400, 'invalid_request', 'Invalid JWT: assertion must be three base64url parts');
    }
    const header = b64urlJson(parts[0], 'header');
    const claims = b64urlJson(parts[1], 'claim set');
    if (header.alg !== 'RS256') throw new OAuthError(400, 'invalid_grant', `Invalid JWT: alg must be RS256, not ${header.alg}`);
    const account = this.config.serviceAccounts.find((a) => a.clientEmail === claims.iss);
    if (!account) throw new OAuthError(400, 'invalid_grant', 'Invalid grant: account not found');
    if (account.keyId && header.kid !== undefined && header.kid !== account.keyId) {
      throw new OAuthError(400, 'invalid_grant', 'Invalid JWT Signature.');
    }
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    if (!crypto.verify('sha256', signed, account.key, Buffer.from(parts[2], 'base64url'))) {
      throw new OAuthError(400, 'invalid_grant', 'Invalid JWT Signature.');
    }
    if (claims.aud !== endpoint) {
      throw new OAuthError(400, 'invalid_grant', `Invalid JWT: aud must be the token endpoint ${endpoint}`);
    }
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
    if (!scopes.some((s) => ACCEPTED_SCOPES.includes(s))) {
      throw new OAuthError(400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
    }
    const now = Math.floor(Date.now() / 1000);
    const { iat, exp } = claims;
    if (!Number.isInteger(iat) || !Number.isInteger(exp) || exp <= iat || exp - iat > MAX_LIFETIME_S
        || iat > now + CLOCK_SKEW_S || exp <= now) {
      throw new OAuthError(400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
    }
    return this.issue('jwt', account.clientEmail);
  }

  refreshGrant(form) {
    const user = this.config.users.find((u) => u.clientId === form.get('client_id') && u.clientSecret === form.get('client_secret'));
    if (!user) throw new OAuthError(401, 'invalid_client', 'The OAuth client was not found.');
    if (user.refreshToken !== form.get('refresh_token')) throw new OAuthError(400, 'invalid_grant', 'Bad Request');
    return this.issue('refresh_token', user.clientId);
  }

  // GET on the metadata server's token path.
  metadataToken(req) {
    if (!this.config.metadata) throw new OAuthError(404, 'not_found', 'no metadata server');
    if (req.headers['metadata-flavor'] !== 'Google') {
      throw new OAuthError(403, 'forbidden', 'Missing required header: Metadata-Flavor: Google');
    }
    this.maybeFail();
    return this.issue('metadata', 'default');
  }
}

function oauthOf(fake) {
  if (!fake.oauth) fake.oauth = new OAuth(fake);
  return fake.oauth;
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new OAuthError(413, 'invalid_request', 'Request body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

// The HTTP server's hook: answers the OAuth routes and returns true, or
// returns false and leaves the request alone.
async function handleOAuth(fake, req, res, url) {
  const oauth = oauthOf(fake);
  const path = url.pathname;
  if (path === '/token' && req.method === 'POST') {
    try {
      const form = await readForm(req);
      const endpoint = `http://${req.headers.host}/token`;
      const out = oauth.token(form, endpoint);
      fake.count(oauth.counts.token, '200');
      sendJson(res, 200, out, { 'Cache-Control': 'no-store' });
    } catch (e) {
      if (!(e instanceof OAuthError)) throw e;
      fake.count(oauth.counts.token, String(e.status));
      sendJson(res, e.status, { error: e.error, error_description: e.message });
    }
    return true;
  }
  if (path === METADATA_TOKEN_PATH && req.method === 'GET') {
    try {
      const out = oauth.metadataToken(req);
      fake.count(oauth.counts.metadata, '200');
      sendJson(res, 200, out, { 'Metadata-Flavor': 'Google' });
    } catch (e) {
      if (!(e instanceof OAuthError)) throw e;
      fake.count(oauth.counts.metadata, String(e.status));
      // the metadata server answers errors in plain text
      const text = `${e.message}\n`;
      res.writeHead(e.status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    }
    return true;
  }
  if (path === '/_fake/oauth') {
    if (req.method === 'GET') sendJson(res, 200, oauth.view());
    else if (req.method === 'DELETE') {
      oauth.reset();
      sendJson(res, 200, { ok: true });
    } else if (req.method === 'POST') {
      try {
        const text = await new Promise((resolve, reject) => {
          const chunks = [];
          req.on('data', (c) => chunks.push(c));
          req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
          req.on('error', reject);
        });
        const body = JSON.parse(text || '{}');
        if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('the body must be a JSON object');
        sendJson(res, 200, oauth.setConfig(body));
      } catch (e) {
        sendJson(res, 400, { error: e.message });
      }
    } else sendJson(res, 404, { error: `no control endpoint ${req.method} /_fake/oauth` });
    return true;
  }
  return false;
}

module.exports = {
  OAuth, OAuthError, handleOAuth, oauthOf, METADATA_TOKEN_PATH, JWT_BEARER,
};

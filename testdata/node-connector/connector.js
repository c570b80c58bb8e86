#!/usr/bin/env node
// A Bridgekeeper connector plugin written in Node.js. It speaks go-plugin's
// handshake and serves plugins/proto/connector.proto over gRPC, so the broker
// runs it like any Go plugin (with auto_mtls off: it does not implement
// go-plugin's automatic mutual TLS).
//
// It stands in for an upstream that needs no network: the configuration
// lists users by the "code" the upstream would send back.
//
//   config: { "issuer": "https://idp.example", "users": { "<code>": { "sub": "…",
//             "email": "…", "name": "…", "groups": ["…"], "disabled": false } },
//             "auto_login": "<code>" }
//
// With "auto_login" (the demo) there is no upstream page at all: the login
// goes straight back to the broker's callback as that user.
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// go-plugin's handshake: the broker sets this variable; anything else
// started us by mistake.
const COOKIE_KEY = 'BRIDGEKEEPER_PLUGIN';
const COOKIE_VALUE = 'connector-v1-4f1c9b7e2d';
const CORE_PROTOCOL_VERSION = 1; // go-plugin's own protocol
const APP_PROTOCOL_VERSION = 1; // bridgekeeper.connector.v1

const LEVELS = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };
const minLevel = LEVELS[process.env.BRIDGEKEEPER_PLUGIN_LOG_LEVEL] ?? LEVELS.info;

// log writes one hclog-style JSON line to standard error; the broker logs
// it with connector=<id>.
function log(level, message, fields = {}) {
  if (LEVELS[level] < minLevel) return;
  process.stderr.write(JSON.stringify({
    '@level': level,
    '@message': message,
    '@timestamp': new Date().toISOString(),
    ...fields,
  }) + '\n');
}

// fail answers a call with a gRPC status and the reason the broker maps to
// one of its connector errors.
function fail(callback, code, reason, details, userMessage) {
  const metadata = new grpc.Metadata();
  if (reason) metadata.set('bridgekeeper-error-reason', reason);
  if (userMessage) metadata.set('bridgekeeper-error-detail-bin', errorDetail(userMessage));
  callback({ code, details, metadata });
}

// errorDetail serializes an ErrorDetail (connector.proto) holding only
// user_message (field 2, a string) by hand: the one message this plugin
// sends that proto-loader cannot encode for it.
function errorDetail(userMessage) {
  const text = Buffer.from(userMessage, 'utf8');
  const len = [];
  for (let n = text.length; ; n >>>= 7) {
    if (n < 0x80) { len.push(n); break; }
    len.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x12, ...len]), text]);
}

function load(file, dir) {
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, {
    includeDirs: [dir],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
  }));
}

function first(values, name) {
  const v = values && values[name];
  return v && v.values && v.values.length > 0 ? v.values[0] : '';
}

function main() {
  if (process.env[COOKIE_KEY] !== COOKIE_VALUE) {
    process.stderr.write('This program is a Bridgekeeper connector plugin: the broker starts it.\n');
    process.exit(1);
  }

  const protoDir = process.env.BRIDGEKEEPER_CONNECTOR_PROTO_DIR ||
    path.join(__dirname, '..', '..', 'plugins', 'proto');
  const connectorPkg = load('connector.proto', protoDir).bridgekeeper.connector.v1;
  const healthPkg = load('health.proto', __dirname).grpc.health.v1;
  const controllerPkg = load('controller.proto', __dirname).plugin;

  let config = null;
  const server = new grpc.Server();

  server.addService(connectorPkg.Connector.service, {
    GetInfo(call, callback) {
      callback(null, {
        protocolVersion: APP_PROTOCOL_VERSION,
        name: 'bridgekeeper-node-connector',
        version: require('./package.json').version,
        sdk: 'node',
        configured: config !== null,
        capabilities: { refresh: true },
      });
    },

    Configure(call, callback) {
      let parsed;
      try {
        parsed = JSON.parse(call.request.configJson.toString('utf8') || '{}');
      } catch (e) {
        return fail(callback, grpc.status.INVALID_ARGUMENT, '', `config is not JSON: ${e.message}`);
      }
      if (!parsed.issuer) {
        return fail(callback, grpc.status.INVALID_ARGUMENT, '', 'config: issuer is required');
      }
      config = { issuer: parsed.issuer, users: parsed.users || {}, autoLogin: parsed.auto_login || '' };
      if (config.autoLogin && !config.users[config.autoLogin]) {
        return fail(callback, grpc.status.INVALID_ARGUMENT, '', `config: auto_login names no user: ${config.autoLogin}`);
      }
      log('info', 'node connector configured', {
        issuer: config.issuer,
        users: Object.keys(config.users).length,
      });
      callback(null, { capabilities: { refresh: true } });
    },

    LoginURL(call, callback) {
      if (!config) return fail(callback, grpc.status.FAILED_PRECONDITION, 'NOT_CONFIGURED', 'not configured');
      const req = call.request;
      if (config.autoLogin) {
        const back = new URL(req.callbackUrl);
        back.searchParams.set('state', req.state);
        back.searchParams.set('code', config.autoLogin);
        log('info', 'login started (auto_login)', { state: req.state });
        callback(null, { url: back.toString(), connectorState: Buffer.from(`node:${req.state}`) });
        return;
      }
      const url = new URL('/authorize', config.issuer);
      url.searchParams.set('state', req.state);
      url.searchParams.set('redirect_uri', req.callbackUrl);
      const scopes = ['openid'];
      if (req.scopes && req.scopes.offlineAccess) scopes.push('offline_access');
      if (req.scopes && req.scopes.groups) scopes.push('groups');
      url.searchParams.set('scope', scopes.join(' '));
      if (req.loginHint) url.searchParams.set('login_hint', req.loginHint);
      log('info', 'login started', { state: req.state });
      callback(null, { url: url.toString(), connectorState: Buffer.from(`node:${req.state}`) });
    },

    HandleCallback(call, callback) {
      if (!config) return fail(callback, grpc.status.FAILED_PRECONDITION, 'NOT_CONFIGURED', 'not configured');
      const req = call.request;
      const error = first(req.query, 'error');
      if (error) {
        return fail(callback, grpc.status.PERMISSION_DENIED, 'UPSTREAM_DENIED', `upstream answered ${error}`);
      }
      if (!req.connectorState.toString('utf8').startsWith('node:')) {
        return fail(callback, grpc.status.INVALID_ARGUMENT, 'INVALID_CALLBACK', 'unknown connector state');
      }
      const code = first(req.query, 'code') || first(req.form, 'code');
      const user = config.users[code];
      if (!user) {
        return fail(callback, grpc.status.INVALID_ARGUMENT, 'INVALID_CALLBACK', 'unknown or missing code');
      }
      if (!user.email) {
        // Only the code, no reason: the broker understands that too.
        return fail(callback, grpc.status.FAILED_PRECONDITION, '', `user ${user.sub} has no e-mail`,
          'Add an e-mail address to your account there, then sign in again.');
      }
      callback(null, { identity: identityOf(code, user) });
    },

    Refresh(call, callback) {
      if (!config) return fail(callback, grpc.status.FAILED_PRECONDITION, 'NOT_CONFIGURED', 'not configured');
      const identity = call.request.identity || {};
      const code = identity.connectorData ? identity.connectorData.toString('utf8') : '';
      const user = config.users[code];
      if (!user || user.disabled) {
        return fail(callback, grpc.status.UNAUTHENTICATED, 'IDENTITY_REVOKED', `user ${identity.subject} is disabled upstream`);
      }
      callback(null, { identity: identityOf(code, user) });
    },
  });

  server.addService(healthPkg.Health.service, {
    Check(call, callback) {
      const service = call.request.service;
      if (service !== '' && service !== 'plugin') {
        return callback(null, { status: 'SERVICE_UNKNOWN' });
      }
      callback(null, { status: 'SERVING' });
    },
  });

  server.addService(controllerPkg.GRPCController.service, {
    Shutdown(call, callback) {
      log('debug', 'shutting down');
      callback(null, {});
      setImmediate(() => {
        server.forceShutdown();
        process.exit(0);
      });
    },
  });

  // End with the broker: if it dies without stopping us, we are adopted by
  // another process.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000).unref();

  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      process.stderr.write(`cannot listen: ${err.message}\n`);
      process.exit(1);
    }
    // The handshake line: CORE-PROTOCOL-VERSION|APP-PROTOCOL-VERSION|NETWORK|ADDRESS|PROTOCOL
    process.stdout.write(`${CORE_PROTOCOL_VERSION}|${APP_PROTOCOL_VERSION}|tcp|127.0.0.1:${port}|grpc\n`);
  });
}

function identityOf(code, user) {
  return {
    subject: user.sub,
    email: user.email,
    emailVerified: true,
    name: user.name || '',
    groups: user.groups || [],
    claimsJson: Buffer.from(JSON.stringify({ runtime: 'node', node_version: process.version })),
    connectorData: Buffer.from(code),
  };
}

main();

'use strict';
// Google's published protos, loaded from the google-proto-files npm package.
// proto-loader builds the gRPC service definition; a protobufjs Root loaded
// from the same files encodes the few messages packed into google.protobuf.Any
// (StorageError in error details).

const path = require('path');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_DIR = path.dirname(require.resolve('google-proto-files/package.json'));
const STORAGE_PROTO = 'google/cloud/bigquery/storage/v1/storage.proto';
// annotations.proto declares the FieldOptions extension column_name
// (field 454943157); storage.proto does not import it, so load it explicitly
// or the option would be dropped as an unknown field when decoding requests.
const ANNOTATIONS_PROTO = 'google/cloud/bigquery/storage/v1/annotations.proto';
const PROTO_FILES = [STORAGE_PROTO, ANNOTATIONS_PROTO];

const PKG = 'google.cloud.bigquery.storage.v1';
const COLUMN_NAME_OPTION = `.${PKG}.column_name`;
const COLUMN_NAME_FIELD_NUMBER = 454943157;

// Request objects keep the proto field names (write_stream, proto_rows, ...),
// int64 as strings, enums as their names, bytes as Buffers, and no defaults
// (so presence is visible: an absent field is undefined).
const LOADER_OPTIONS = {
  includeDirs: [PROTO_DIR],
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
};

function loadPackageDefinition() {
  return protoLoader.loadSync(PROTO_FILES, LOADER_OPTIONS);
}

let rootCache = null;
function root() {
  if (!rootCache) {
    const r = new protobuf.Root();
    r.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
    r.loadSync(PROTO_FILES, { keepCase: true });
    r.resolveAll();
    rootCache = r;
  }
  return rootCache;
}

// google.protobuf.Any holding a google.cloud.bigquery.storage.v1.StorageError.
function storageErrorAny(code, entity, errorMessage) {
  const T = root().lookupType(`${PKG}.StorageError`);
  const value = T.encode(T.fromObject({ code, entity, error_message: errorMessage })).finish();
  return { type_url: `type.googleapis.com/${PKG}.StorageError`, value: Buffer.from(value) };
}

function decodeStorageErrorAny(any) {
  const T = root().lookupType(`${PKG}.StorageError`);
  return T.toObject(T.decode(any.value), { enums: String });
}

module.exports = {
  PROTO_DIR,
  PROTO_FILES,
  PKG,
  COLUMN_NAME_OPTION,
  COLUMN_NAME_FIELD_NUMBER,
  loadPackageDefinition,
  root,
  storageErrorAny,
  decodeStorageErrorAny,
};

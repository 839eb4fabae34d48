'use strict';
// check_bq_protos.js - proto/bigquery_write.proto (the subset of Google's
// protos dsplug-consumer's BigQuery target speaks) against Google's
// published protos as npm's google-proto-files ships them: every message
// declared must exist in Google's, and every field in it must have the same
// name, number, label and type (message and enum types by name); enum
// values the same numbers.  Two deliberate differences are checked as such:
// RowError.code is int32 where Google has the enum RowErrorCode (the same
// varint), and FieldOptions.column_name is Google's extension
// google.cloud.bigquery.storage.v1.column_name declared as a plain field.
//
// Usage: node check_bq_protos.js SUBSET.proto FAKE_BIGQUERY_DIR
// Exits 0 when everything matches, 1 listing the differences.

const path = require('path');

const [subsetFile, fakeDir] = process.argv.slice(2).map((p) => path.resolve(p));
const protobuf = require(path.join(fakeDir, 'node_modules', 'protobufjs'));
const protoDir = path.dirname(require.resolve('google-proto-files/package.json',
  { paths: [fakeDir] }));

const google = new protobuf.Root();
google.resolvePath = (origin, target) => path.join(protoDir, target);
google.loadSync([
  'google/cloud/bigquery/storage/v1/storage.proto',
  'google/cloud/bigquery/storage/v1/annotations.proto',
  'google/rpc/status.proto',
  'google/protobuf/descriptor.proto',
], { keepCase: true });
google.resolveAll();

const mine = new protobuf.Root().loadSync(subsetFile, { keepCase: true });
mine.resolveAll();

const WHERE = {
  AppendRowsRequest: 'google.cloud.bigquery.storage.v1.AppendRowsRequest',
  'AppendRowsRequest.ProtoData': 'google.cloud.bigquery.storage.v1.AppendRowsRequest.ProtoData',
  AppendRowsResponse: 'google.cloud.bigquery.storage.v1.AppendRowsResponse',
  'AppendRowsResponse.AppendResult': 'google.cloud.bigquery.storage.v1.AppendRowsResponse.AppendResult',
  RowError: 'google.cloud.bigquery.storage.v1.RowError',
  ProtoSchema: 'google.cloud.bigquery.storage.v1.ProtoSchema',
  ProtoRows: 'google.cloud.bigquery.storage.v1.ProtoRows',
  Status: 'google.rpc.Status',
  DescriptorProto: 'google.protobuf.DescriptorProto',
  FieldDescriptorProto: 'google.protobuf.FieldDescriptorProto',
  'FieldDescriptorProto.Type': 'google.protobuf.FieldDescriptorProto.Type',
  'FieldDescriptorProto.Label': 'google.protobuf.FieldDescriptorProto.Label',
  FieldOptions: 'google.protobuf.FieldOptions',
};

const errors = [];
let fields = 0;
const base = mine.lookup('dsplug.bigquery');

function relName(t) {
  return t.fullName.replace(/^\.dsplug\.bigquery\./, '');
}

function walk(ns) {
  for (const obj of ns.nestedArray) {
    const rel = relName(obj);
    if (obj instanceof protobuf.Type || obj instanceof protobuf.Enum) {
      if (!WHERE[rel]) {
        errors.push(`${rel}: not mapped to a Google message`);
        continue;
      }
      const theirs = google.lookup(WHERE[rel]);
      if (!theirs) {
        errors.push(`${rel}: ${WHERE[rel]} not found in Google's protos`);
        continue;
      }
      if (obj instanceof protobuf.Enum) {
        for (const [name, num] of Object.entries(obj.values)) {
          if (theirs.values[name] !== num) {
            errors.push(`${rel}.${name} = ${num}, Google: ${theirs.values[name]}`);
          }
        }
        continue;
      }
      for (const f of obj.fieldsArray) {
        fields += 1;
        const where = `${rel}.${f.name}`;
        if (rel === 'FieldOptions' && f.name === 'column_name') {
          const ext = google.lookup('google.cloud.bigquery.storage.v1.column_name');
          if (!ext || ext.id !== f.id || ext.type !== f.type || ext.extend !== 'google.protobuf.FieldOptions') {
            errors.push(`${where}: not Google's column_name extension (${ext && ext.id} ${ext && ext.type})`);
          }
          continue;
        }
        const g = theirs.fields[f.name];
        if (!g) {
          errors.push(`${where}: no such field in ${WHERE[rel]}`);
          continue;
        }
        if (g.id !== f.id) errors.push(`${where}: number ${f.id}, Google ${g.id}`);
        if (g.repeated !== f.repeated) errors.push(`${where}: repeated ${f.repeated}, Google ${g.repeated}`);
        const myType = f.resolvedType ? relName(f.resolvedType) : f.type;
        const theirType = g.resolvedType ? g.resolvedType.fullName.replace(/^\./, '') : g.type;
        if (rel === 'RowError' && f.name === 'code') {
          if (!(f.type === 'int32' && g.resolvedType instanceof protobuf.Enum)) {
            errors.push(`${where}: expected int32 for Google's enum, got ${f.type} / ${theirType}`);
          }
          continue;
        }
        const expect = f.resolvedType ? WHERE[myType] : myType;
        if (expect !== theirType) errors.push(`${where}: type ${myType} (${expect}), Google ${theirType}`);
        if ((f.partOf && f.partOf.name) !== (g.partOf && g.partOf.name)) {
          errors.push(`${where}: oneof ${f.partOf && f.partOf.name}, Google ${g.partOf && g.partOf.name}`);
        }
      }
    }
    if (obj.nestedArray) walk(obj);
  }
}

walk(base);
if (errors.length) {
  console.log(errors.join('\n'));
  process.exit(1);
}
console.log(`# ${fields} fields of ${Object.keys(WHERE).length} messages and enums match Google's protos`);

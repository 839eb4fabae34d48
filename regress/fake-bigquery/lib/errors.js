'use strict';
// Error shapes: Google's REST JSON error body and gRPC status codes.

const { status: GrpcStatus } = require('@grpc/grpc-js');

// HTTP code -> google.rpc.Code name used in the REST "status" member.
const HTTP_STATUS_NAMES = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'ALREADY_EXISTS',
  413: 'INVALID_ARGUMENT',
  500: 'INTERNAL',
};

// A REST error: {"error": {"code", "message", "errors": [{message, domain,
// reason}], "status"}} as BigQuery's v2 API answers.
class ApiError extends Error {
  constructor(httpCode, reason, message, extra = {}) {
    super(message);
    this.httpCode = httpCode;
    this.reason = reason;
    this.domain = extra.domain || 'global';
    this.statusName = extra.status || HTTP_STATUS_NAMES[httpCode] || 'UNKNOWN';
    this.location = extra.location;
    this.locationType = extra.locationType;
  }

  toJSON() {
    const item = { message: this.message, domain: this.domain, reason: this.reason };
    if (this.location) item.location = this.location;
    if (this.locationType) item.locationType = this.locationType;
    return {
      error: { code: this.httpCode, message: this.message, errors: [item], status: this.statusName },
    };
  }
}

const notFound = (what) => new ApiError(404, 'notFound', `Not found: ${what}`);
const duplicate = (what) => new ApiError(409, 'duplicate', `Already Exists: ${what}`);

// gRPC code name <-> number (the names of google.rpc.Code).
const CODE_NAMES = Object.fromEntries(Object.entries(GrpcStatus).map(([k, v]) => [v, k]));

function grpcCode(nameOrNumber) {
  if (typeof nameOrNumber === 'number' && CODE_NAMES[nameOrNumber]) return nameOrNumber;
  const n = GrpcStatus[String(nameOrNumber).toUpperCase()];
  if (n === undefined) throw new Error(`unknown gRPC status code ${nameOrNumber}`);
  return n;
}

function grpcCodeName(code) {
  return CODE_NAMES[code] || String(code);
}

// An error that ends an AppendRows call with a gRPC status.
class CallError extends Error {
  constructor(code, message) {
    super(message);
    this.code = grpcCode(code);
  }
}

// An error answered in-band in an AppendRowsResponse (error + row_errors).
class InBandError extends Error {
  constructor(code, message, { rowErrors = [], details = [] } = {}) {
    super(message);
    this.code = grpcCode(code);
    this.rowErrors = rowErrors;
    this.details = details;
  }
}

module.exports = {
  ApiError,
  notFound,
  duplicate,
  GrpcStatus,
  grpcCode,
  grpcCodeName,
  CallError,
  InBandError,
};

/**
 * The ONNX file format (a protobuf `onnx.ModelProto`), encoded and decoded with protobufjs.
 *
 * Why protobufjs with a vendored subset of onnx.proto, and not the `onnx-proto` package: onnx-proto
 * (last release 8.0.1) pins protobufjs 6 and an old onnx.proto, while protobufjs 8 is maintained,
 * has a single dependency (long), and parses .proto text at run time — no generated code to keep
 * in sync. The subset below is copied from onnx/onnx's onnx/onnx.proto (proto2) with the same
 * field numbers; only the messages and fields an inference graph of dense tensors needs are kept
 * (protobuf readers skip what they do not know, and writers only emit what is set, so a subset
 * with the original numbers writes valid files).
 */
import * as protobuf from 'protobufjs';

const ONNX_PROTO_SUBSET = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
  }
  optional string name = 1;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
}

message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message TensorProto {
  enum DataType {
    UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; UINT16 = 4; INT16 = 5; INT32 = 6; INT64 = 7;
    STRING = 8; BOOL = 9; FLOAT16 = 10; DOUBLE = 11; UINT32 = 12; UINT64 = 13;
  }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional string doc_string = 12;
  optional bytes raw_data = 9;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    };
    optional string denotation = 3;
  };
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  optional string denotation = 6;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;
/** AttributeProto.AttributeType values used here. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

export interface TensorMessage {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}

export interface AttributeMessage {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
}

export interface NodeMessage {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute: AttributeMessage[];
}

export type DimMessage = { dim_value: number } | { dim_param: string };

export interface ValueInfoMessage {
  name: string;
  doc_string?: string;
  type: { tensor_type: { elem_type: number; shape: { dim: DimMessage[] } } };
}

export interface ModelMessage {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version: string;
  doc_string?: string;
  graph: {
    name: string;
    node: NodeMessage[];
    initializer: TensorMessage[];
    input: ValueInfoMessage[];
    output: ValueInfoMessage[];
  };
  metadata_props: { key: string; value: string }[];
}

let modelType: protobuf.Type | undefined;
const ModelProto = (): protobuf.Type => (modelType ??= protobuf.parse(ONNX_PROTO_SUBSET, { keepCase: true }).root.lookupType('onnx.ModelProto'));

/** A ModelProto's wire bytes. */
export function encodeModel(model: ModelMessage): Uint8Array {
  const type = ModelProto();
  const message = type.fromObject(model as unknown as Record<string, unknown>);
  return type.encode(message).finish();
}

/** A ModelProto read back (int64 as numbers, bytes as Uint8Array; fields absent on the wire stay absent). */
export function decodeModel(bytes: Uint8Array): ModelMessage {
  const type = ModelProto();
  return type.toObject(type.decode(bytes), { longs: Number, arrays: true }) as unknown as ModelMessage;
}

//===- Ast.cpp - Names of AST enumerations ---------------------------------===//
#include "attnc/dsl/Ast.h"

namespace attnc::dsl {

const char *typeName(Type t) {
  switch (t) {
  case Type::Unknown: return "<unknown>";
  case Type::Int: return "int";
  case Type::Float: return "float";
  case Type::Bool: return "bool";
  }
  return "?";
}

const char *opSpelling(Op op) {
  switch (op) {
  case Op::Neg: return "-";
  case Op::Not: return "!";
  case Op::Add: return "+";
  case Op::Sub: return "-";
  case Op::Mul: return "*";
  case Op::Div: return "/";
  case Op::Mod: return "%";
  case Op::Lt: return "<";
  case Op::Le: return "<=";
  case Op::Gt: return ">";
  case Op::Ge: return ">=";
  case Op::Eq: return "==";
  case Op::Ne: return "!=";
  case Op::And: return "&&";
  case Op::Or: return "||";
  case Op::Cond: return "?:";
  }
  return "?";
}

const char *builtinName(Builtin b) {
  switch (b) {
  case Builtin::Abs: return "abs";
  case Builtin::Min: return "min";
  case Builtin::Max: return "max";
  case Builtin::Clamp: return "clamp";
  case Builtin::Tanh: return "tanh";
  case Builtin::Exp: return "exp";
  case Builtin::Log: return "log";
  case Builtin::Sqrt: return "sqrt";
  }
  return "?";
}

const char *elemTypeName(ElemType t) {
  switch (t) {
  case ElemType::I32: return "i32";
  case ElemType::I64: return "i64";
  case ElemType::F32: return "f32";
  case ElemType::Bool: return "bool";
  }
  return "?";
}

const char *axisName(Axis a) {
  switch (a) {
  case Axis::Batch: return "batch";
  case Axis::Head: return "head";
  case Axis::Token: return "token";
  }
  return "?";
}

const char *indexerDTypeName(IndexerDType t) {
  switch (t) {
  case IndexerDType::FP8: return "fp8";
  case IndexerDType::BF16: return "bf16";
  case IndexerDType::FP16: return "fp16";
  case IndexerDType::FP32: return "fp32";
  }
  return "?";
}

} // namespace attnc::dsl

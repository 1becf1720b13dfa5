//===- AttnOps.cpp - Operations of the attn dialect -----------------------===//
//
// Verifiers, the custom syntax of attn.input, block argument names of
// attn.variant, and the folder of attn.floormod. Every verifier message says
// what was expected and what was found, in lower case:
//   'attn.read' op expected 2 indices for input @doc, got 1
//
//===----------------------------------------------------------------------===//
#include "attnc/Dialect/Attn/IR/AttnOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallSet.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
using namespace attnc::attn;

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

llvm::StringRef attnc::attn::stringifyAxis(Axis axis) {
  switch (axis) {
  case Axis::Batch: return "batch";
  case Axis::Head: return "head";
  case Axis::Token: return "token";
  }
  llvm_unreachable("unknown axis");
}

std::optional<Axis> attnc::attn::symbolizeAxis(llvm::StringRef name) {
  return llvm::StringSwitch<std::optional<Axis>>(name)
      .Case("batch", Axis::Batch)
      .Case("head", Axis::Head)
      .Case("token", Axis::Token)
      .Default(std::nullopt);
}

llvm::StringRef attnc::attn::stringifyVariantRegion(VariantRegion kind) {
  switch (kind) {
  case VariantRegion::Mask: return "mask";
  case VariantRegion::Score: return "score";
  case VariantRegion::Select: return "select";
  }
  llvm_unreachable("unknown region kind");
}

/// A type as the verifier messages show it: `i64`, unquoted (streaming a
/// Type into a diagnostic would quote it: 'i64').
static std::string str(Type type) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << type;
  return s;
}

/// "1 index", "2 indices".
static std::string countOf(size_t n, const char *one, const char *many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

//===----------------------------------------------------------------------===//
// attn.input
//===----------------------------------------------------------------------===//

// Syntax, mirroring the source's `input doc : i32[batch, token];`:
//   attn.input @doc : i32[batch, token] attr-dict?
ParseResult InputOp::parse(OpAsmParser &parser, OperationState &result) {
  StringAttr name;
  Type elem;
  if (parser.parseSymbolName(name, getSymNameAttrName(result.name), result.attributes) ||
      parser.parseColon() || parser.parseType(elem))
    return failure();
  SmallVector<Attribute> axes;
  auto parseAxis = [&]() -> ParseResult {
    llvm::SMLoc loc = parser.getCurrentLocation();
    StringRef word;
    if (parser.parseKeyword(&word))
      return failure();
    if (!symbolizeAxis(word))
      return parser.emitError(loc) << "expected batch, head or token, got '" << word << "'";
    axes.push_back(parser.getBuilder().getStringAttr(word));
    return success();
  };
  if (parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, parseAxis) ||
      parser.parseOptionalAttrDict(result.attributes))
    return failure();
  result.addAttribute(getElemAttrName(result.name), TypeAttr::get(elem));
  result.addAttribute(getAxesAttrName(result.name), parser.getBuilder().getArrayAttr(axes));
  return success();
}

void InputOp::print(OpAsmPrinter &p) {
  p << ' ';
  p.printSymbolName(getSymName());
  p << " : " << getElem() << '[';
  llvm::interleaveComma(getAxes().getAsValueRange<StringAttr>(), p);
  p << ']';
  p.printOptionalAttrDict((*this)->getAttrs(),
                          {getSymNameAttrName(), getAxesAttrName(), getElemAttrName()});
}

LogicalResult InputOp::verify() {
  Type elem = getElem();
  if (!elem.isInteger(1) && !elem.isInteger(32) && !elem.isInteger(64) && !elem.isF32())
    return emitOpError() << "expected element type i32, i64, f32 or i1 for input @" << getSymName()
                         << ", got " << str(elem);
  int batch = 0, head = 0;
  for (auto [i, attr] : llvm::enumerate(getAxes())) {
    auto name = dyn_cast<StringAttr>(attr);
    std::optional<Axis> axis = name ? symbolizeAxis(name.getValue()) : std::nullopt;
    if (!axis)
      return emitOpError() << "expected axis " << i << " of input @" << getSymName()
                           << " to be batch, head or token, got " << attr;
    batch += *axis == Axis::Batch;
    head += *axis == Axis::Head;
  }
  if (batch > 1 || head > 1)
    return emitOpError() << "expected at most one " << (batch > 1 ? "batch" : "head")
                         << " axis in input @" << getSymName() << ", got "
                         << (batch > 1 ? batch : head);
  return success();
}

SmallVector<Axis> InputOp::getAxisKinds() {
  SmallVector<Axis> axes;
  for (StringRef name : getAxes().getAsValueRange<StringAttr>())
    axes.push_back(*symbolizeAxis(name));
  return axes;
}

//===----------------------------------------------------------------------===//
// attn.read
//===----------------------------------------------------------------------===//

LogicalResult ReadOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto input = symbols.lookupNearestSymbolFrom<InputOp>(*this, getInputAttr());
  if (!input)
    return emitOpError() << "expected @" << getInput() << " to name an attn.input";
  SmallVector<Axis> axes = input.getAxisKinds();
  if (getIndices().size() != axes.size())
    return emitOpError() << "expected " << countOf(axes.size(), "index", "indices") << " for input @"
                         << getInput() << ", got " << getIndices().size();
  if (getResult().getType() != input.getElem())
    return emitOpError() << "expected result type " << str(input.getElem()) << " for input @" << getInput()
                         << ", got " << str(getResult().getType());

  // Inside a variant, each index is the region argument its axis is indexed
  // by: doc[b, q] with doc : i32[batch, token].
  auto variant = (*this)->getParentOfType<VariantOp>();
  if (!variant)
    return success();
  for (auto [i, axis, index] : llvm::enumerate(axes, getIndices())) {
    std::optional<StringRef> role = variant.getArgRole(index);
    bool ok = role && (axis == Axis::Batch   ? *role == "b"
                       : axis == Axis::Head ? *role == "h"
                                            : (*role == "q" || *role == "k"));
    if (ok)
      continue;
    InFlightDiagnostic diag = emitOpError()
                              << "expected index " << i << " of input @" << getInput() << " ("
                              << stringifyAxis(axis) << " axis) to be "
                              << (axis == Axis::Batch  ? "%b"
                                  : axis == Axis::Head ? "%h"
                                                       : "%q or %k")
                              << ", got ";
    if (role)
      diag << "%" << *role;
    else
      diag << "a computed value";
    return diag;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// attn.variant
//===----------------------------------------------------------------------===//

VariantRegion VariantOp::getVariantRegion(Region &region) {
  if (&region == &getMask())
    return VariantRegion::Mask;
  if (&region == &getScore())
    return VariantRegion::Score;
  assert(&region == &getSelect() && "not a region of this attn.variant");
  return VariantRegion::Select;
}

ArrayRef<StringRef> VariantOp::getArgNames(VariantRegion kind) {
  static const StringRef mask[] = {"q", "k", "h", "b", "qlen", "klen"};
  static const StringRef score[] = {"q", "k", "h", "b", "qlen", "klen", "s"};
  static const StringRef select[] = {"q", "k", "b", "qlen", "klen"};
  switch (kind) {
  case VariantRegion::Mask: return mask;
  case VariantRegion::Score: return score;
  case VariantRegion::Select: return select;
  }
  llvm_unreachable("unknown region kind");
}

std::optional<StringRef> VariantOp::getArgRole(Value value) {
  auto arg = dyn_cast<BlockArgument>(value);
  if (!arg)
    return std::nullopt;
  Region *region = arg.getOwner()->getParent();
  if (!region || region->getParentOp() != getOperation() || !arg.getOwner()->isEntryBlock())
    return std::nullopt;
  ArrayRef<StringRef> names = getArgNames(getVariantRegion(*region));
  if (arg.getArgNumber() >= names.size())
    return std::nullopt;
  return names[arg.getArgNumber()];
}

void VariantOp::getAsmBlockArgumentNames(Region &region, OpAsmSetValueNameFn setNameFn) {
  if (region.empty())
    return;
  ArrayRef<StringRef> names = getArgNames(getVariantRegion(region));
  for (auto [arg, name] : llvm::zip(region.front().getArguments(), names))
    setNameFn(arg, name);
}

/// Checks the `indexer` dictionary: {heads: i64 >= 1, dim: i64 >= 1,
/// dtype: "fp8" | "bf16" | "fp16" | "fp32"}.
static LogicalResult verifyIndexer(VariantOp op, DictionaryAttr indexer) {
  for (NamedAttribute entry : indexer) {
    StringRef key = entry.getName().getValue();
    if (key == "heads" || key == "dim") {
      auto value = dyn_cast<IntegerAttr>(entry.getValue());
      if (!value || !value.getType().isInteger(64) || value.getInt() < 1)
        return op.emitOpError() << "expected indexer " << key << " to be a positive i64, got "
                                << entry.getValue();
    } else if (key == "dtype") {
      auto value = dyn_cast<StringAttr>(entry.getValue());
      if (!value || !llvm::is_contained({"fp8", "bf16", "fp16", "fp32"}, value.getValue()))
        return op.emitOpError() << "expected indexer dtype \"fp8\", \"bf16\", \"fp16\" or \"fp32\", got "
                                << entry.getValue();
    } else {
      return op.emitOpError() << "expected indexer keys heads, dim and dtype, got '" << key << "'";
    }
  }
  for (StringRef key : {"heads", "dim", "dtype"})
    if (!indexer.get(key))
      return op.emitOpError() << "expected indexer " << key << ", got none";
  return success();
}

LogicalResult VariantOp::verify() {
  if (FloatAttr scale = getScaleAttr()) {
    double v = scale.getValueAsDouble();
    if (!std::isfinite(v) || v <= 0)
      return emitOpError() << "expected a positive finite scale, got " << v;
  }
  IntegerAttr topk = getTopkAttr();
  if (topk && topk.getInt() < 1)
    return emitOpError() << "expected topk >= 1, got " << topk.getInt();
  bool byRegion = !getSelect().empty(), byIndexer = bool(getIndexerAttr());
  if (topk && !byRegion && !byIndexer)
    return emitOpError() << "expected a select region or an indexer with topk, got neither";
  if (byRegion && byIndexer)
    return emitOpError() << "expected a select region or an indexer, got both";
  if (!topk && (byRegion || byIndexer))
    return emitOpError() << "expected topk with " << (byRegion ? "a select region" : "an indexer")
                         << ", got none";
  if (byIndexer && failed(verifyIndexer(*this, getIndexerAttr())))
    return failure();
  return success();
}

LogicalResult VariantOp::verifyRegions() {
  Builder b(getContext());
  for (Region *region : {&getMask(), &getScore(), &getSelect()}) {
    if (region->empty())
      continue;
    VariantRegion kind = getVariantRegion(*region);
    StringRef what = stringifyVariantRegion(kind);
    ArrayRef<StringRef> names = getArgNames(kind);
    Block &block = region->front();
    if (block.getNumArguments() != names.size())
      return emitOpError() << "expected " << countOf(names.size(), "argument", "arguments") << " ("
                           << llvm::join(names, ", ") << ") in the " << what << " region, got "
                           << block.getNumArguments();
    for (auto [arg, name] : llvm::zip(block.getArguments(), names)) {
      Type want = name == "s" ? Type(b.getF32Type()) : Type(b.getI64Type());
      if (arg.getType() != want)
        return emitOpError() << "expected argument %" << name << " of the " << what << " region to be "
                             << str(want) << ", got " << str(arg.getType());
    }
    if (!isa<YieldOp>(block.back()))
      return emitOpError() << "expected the " << what << " region to end with attn.yield, got "
                           << block.back().getName();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// attn.yield
//===----------------------------------------------------------------------===//

LogicalResult YieldOp::verify() {
  auto variant = cast<VariantOp>((*this)->getParentOp());
  VariantRegion kind = variant.getVariantRegion(*(*this)->getParentRegion());
  StringRef what = stringifyVariantRegion(kind);
  if (getValues().size() != 1)
    return emitOpError() << "expected the " << what << " region to yield 1 value, got "
                         << getValues().size();
  Type type = getValues().front().getType();
  switch (kind) {
  case VariantRegion::Mask:
    if (!type.isInteger(1))
      return emitOpError() << "expected the mask region to yield i1, got " << str(type);
    break;
  case VariantRegion::Score:
    if (!type.isF32())
      return emitOpError() << "expected the score region to yield f32, got " << str(type);
    break;
  case VariantRegion::Select:
    if (!type.isInteger(64) && !type.isF32())
      return emitOpError() << "expected the select region to yield i64 or f32, got " << str(type);
    break;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// attn.floormod
//===----------------------------------------------------------------------===//

OpFoldResult FloorModOp::fold(FoldAdaptor adaptor) {
  auto lhs = dyn_cast_if_present<IntegerAttr>(adaptor.getLhs());
  auto rhs = dyn_cast_if_present<IntegerAttr>(adaptor.getRhs());
  if (!lhs || !rhs || rhs.getValue().isZero())
    return {};
  // -7 floormod 2: srem gives -1, whose sign differs from the divisor's, so
  // add the divisor: 1. 7 floormod -2: srem 1 -> -1.
  const APInt &b = rhs.getValue();
  APInt r = lhs.getValue().srem(b);
  if (!r.isZero() && r.isNegative() != b.isNegative())
    r += b;
  return IntegerAttr::get(lhs.getType(), r);
}

//===----------------------------------------------------------------------===//
// attn.model
//===----------------------------------------------------------------------===//

LogicalResult ModelOp::verify() {
  int64_t layers = getLayersAttr().getInt();
  if (layers < 1)
    return emitOpError() << "expected at least 1 layer, got " << layers;
  ArrayRef<int32_t> table = getTable();
  if (int64_t(table.size()) != layers)
    return emitOpError() << "expected " << countOf(layers, "layer entry", "layer entries") << ", got "
                         << table.size();
  ArrayAttr variants = getVariants();
  SmallVector<bool> used(variants.size(), false);
  for (auto [layer, entry] : llvm::enumerate(table)) {
    if (entry < 0 || size_t(entry) >= variants.size())
      return emitOpError() << "expected layer " << layer << " to index one of the "
                           << countOf(variants.size(), "variant", "variants") << ", got " << entry;
    used[entry] = true;
  }
  llvm::SmallSet<StringRef, 8> seen;
  for (auto [i, ref] : llvm::enumerate(variants.getAsRange<FlatSymbolRefAttr>())) {
    if (!seen.insert(ref.getValue()).second)
      return emitOpError() << "expected each variant listed once, got " << ref << " twice";
    if (!used[i])
      return emitOpError() << "expected every listed variant to be used by a layer, got " << ref
                           << " unused";
  }
  return success();
}

LogicalResult ModelOp::verifySymbolUses(SymbolTableCollection &symbols) {
  for (FlatSymbolRefAttr ref : getVariants().getAsRange<FlatSymbolRefAttr>())
    if (!symbols.lookupNearestSymbolFrom<VariantOp>(*this, ref))
      return emitOpError() << "expected " << ref << " to name an attn.variant";
  return success();
}

#define GET_OP_CLASSES
#include "attnc/Dialect/Attn/IR/AttnOps.cpp.inc"

// A kernel that reads an input it does not take (attn-lower-region-ops.mlir).
attn.input @flag : i1[batch]
func.func @no_input(%b: i64) -> i1 {
  %0 = attn.read @flag[%b] : i1
  return %0 : i1
}

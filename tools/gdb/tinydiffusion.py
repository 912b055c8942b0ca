# tools/gdb/tinydiffusion.py: gdb pretty-printers for tinydiffusion (gdb's Python API).
#
#   gdb -x tools/gdb/gdbinit build-debug/diffuse      (from the repository root)
#
# `print t` on a td::Tensor (or td::TensorImpl) shows dtype, device, shape, strides,
# offset, view, requires_grad, grad, grad_fn and the first few values, read straight
# from storage->data through (shape, strides, offset) in row-major order. `print m` on
# any td::nn::Module subclass shows its parameters and buffers with dotted names and
# shapes, recursing into children. See docs/debugging.md.
#
# Only libstdc++ layouts are read (std::shared_ptr::_M_ptr, std::vector::_M_impl,
# std::string::_M_dataplus); nothing here calls a function in the program, so printing
# works in a core file and never changes the program's state.
import gdb
import gdb.printing

MAX_VALUES = 8      # elements shown per tensor
MAX_DIMS = 16       # a rank above this means the memory is not a tensor (yet)
MAX_DEPTH = 8       # module nesting shown
MAX_ENTRIES = 200   # parameters + buffers shown per module print

DTYPES = {0: ("float32", "float", 4), 1: ("int64", "long", 8)}  # td::DType
DEVICES = {0: "cpu", 1: "cuda"}                                  # td::Device


def _ptr(shared_ptr):
    """The raw pointer inside a std::shared_ptr (null pointer value when empty)."""
    return shared_ptr["_M_ptr"]


def _vector(vec, limit=None):
    """The elements of a std::vector as a list of gdb.Values."""
    impl = vec["_M_impl"]
    start, finish = impl["_M_start"], impl["_M_finish"]
    n = int(finish - start)
    if n < 0 or n > 1 << 24:
        raise gdb.error("vector of %d elements: not constructed yet?" % n)
    if limit is not None:
        n = min(n, limit)
    return [(start + i).dereference() for i in range(n)]


def _string(s):
    """A std::string's text (the new ABI layout; falls back to gdb's own printer)."""
    try:
        n = int(s["_M_string_length"])
        if n > 4096:
            n = 4096
        return s["_M_dataplus"]["_M_p"].string(length=n)
    except gdb.error:
        return str(s).strip('"')


def _enum(v, names):
    i = int(v)
    return names.get(i, "?%d" % i)


def _shape_list(vec):
    v = _vector(vec)
    if len(v) > MAX_DIMS:
        raise gdb.error("rank %d: not constructed yet?" % len(v))
    return [int(e) for e in v]


def _fmt_shape(s):
    return "[" + ", ".join(str(d) for d in s) + "]"


def _fmt_value(x, is_float):
    if not is_float:
        return str(int(x))
    f = float(x)
    if f == int(f) and abs(f) < 1e15:
        return str(int(f))
    return "%.6g" % f


def _values(impl, shape, strides, offset, dtype):
    """The first MAX_VALUES elements in row-major order, as text."""
    storage = _ptr(impl["storage"])
    if int(storage) == 0:
        return "<no storage>"
    storage = storage.dereference()
    device = int(storage["device"])
    if device != 0:
        return "<on %s>" % _enum(device, DEVICES)
    data = storage["data"]
    nbytes = int(storage["nbytes"])
    if int(data) == 0:
        return "<null data>"
    name, ctype, size = DTYPES.get(dtype, (None, None, None))
    if name is None:
        return "<unknown dtype>"
    elem = data.cast(gdb.lookup_type(ctype).pointer())
    numel = 1
    for d in shape:
        numel *= d
    shown = []
    index = [0] * len(shape)
    for _ in range(min(numel, MAX_VALUES)):
        pos = offset + sum(i * s for i, s in zip(index, strides))
        if pos < 0 or (pos + 1) * size > nbytes:
            shown.append("<out of storage>")
        else:
            shown.append(_fmt_value((elem + pos).dereference(), dtype == 0))
        for k in range(len(shape) - 1, -1, -1):  # odometer: last dim fastest
            index[k] += 1
            if index[k] < shape[k]:
                break
            index[k] = 0
    more = ", ... (%d more)" % (numel - MAX_VALUES) if numel > MAX_VALUES else ""
    return "[" + ", ".join(shown) + more + "]"


def _node_name(node_ptr):
    try:
        return _string(node_ptr.dereference()["name"])
    except gdb.error:
        return "<node at %s>" % hex(int(node_ptr))  # td::Node's debug info not in this binary


def describe_impl(impl_ptr, full=True):
    """One line describing the TensorImpl that impl_ptr points to."""
    if int(impl_ptr) == 0:
        return "td::Tensor (undefined)"
    try:
        impl = impl_ptr.dereference()
        shape = _shape_list(impl["shape"])
        strides = _shape_list(impl["strides"])
        offset = int(impl["offset"])
        dtype = int(impl["dtype"])
        storage = _ptr(impl["storage"])
        device = _enum(storage.dereference()["device"], DEVICES) if int(storage) else "?"
        parts = ["td::Tensor"] if full else []
        parts += [_enum(dtype, {k: v[0] for k, v in DTYPES.items()}), device, "shape=" + _fmt_shape(shape)]
        if not full:
            if bool(impl["requires_grad"]):
                parts.append("requires_grad")
            return " ".join(parts)
        parts += ["strides=" + _fmt_shape(strides), "offset=%d" % offset]
        parts.append("view" if bool(impl["is_view"]) else "not-a-view")
        parts.append("requires_grad=%s" % ("true" if bool(impl["requires_grad"]) else "false"))
        grad = _ptr(impl["grad"])
        if int(grad):
            parts.append("grad=" + _fmt_shape(_shape_list(grad.dereference()["shape"])))
        else:
            parts.append("grad=none")
        fn = _ptr(impl["grad_fn"])
        parts.append("grad_fn=" + (_node_name(fn) if int(fn) else "none"))
        parts.append("values=" + _values(impl, shape, strides, offset, dtype))
        return " ".join(parts)
    except (gdb.error, gdb.MemoryError, RuntimeError, OverflowError) as e:
        return "td::Tensor <unreadable: %s>" % e


class TensorPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        return describe_impl(_ptr(self.val["impl_"]))


class TensorImplPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        return describe_impl(self.val.address)


def _type_name(ptr):
    """The dynamic (most derived) type name of the object ptr points to."""
    try:
        return str(ptr.dynamic_type.target().unqualified().strip_typedefs())
    except gdb.error:
        return str(ptr.type.target())


def _module_lines(module, prefix, depth, out):
    """Appends 'name  tensor' lines for module's params, buffers, then children."""
    for member, tag in (("params_", ""), ("buffers_", " (buffer)")):
        for pair in _vector(module[member]):
            if len(out) >= MAX_ENTRIES:
                return
            name = prefix + _string(pair["first"])
            out.append((name, describe_impl(_ptr(pair["second"]["impl_"]), full=False) + tag))
    for pair in _vector(module["children_"]):
        if len(out) >= MAX_ENTRIES:
            return
        child = _ptr(pair["second"])
        name = prefix + _string(pair["first"])
        if int(child) == 0:
            out.append((name, "(null module)"))
        elif depth >= MAX_DEPTH:
            out.append((name, _type_name(child) + " (deeper: not shown)"))
        else:
            _module_lines(child.dereference(), name + ".", depth + 1, out)


class ModulePrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            module = self.val.cast(_module_type())
            name = _type_name(self.val.address)
            lines = []
            _module_lines(module, "", 0, lines)
            children = len(_vector(module["children_"]))
            head = "%s (%d tensors, %d children, %s)" % (
                name, len(lines), children, "training" if bool(module["training_"]) else "eval")
            width = max([len(n) for n, _ in lines] + [0])
            body = "".join("\n  %-*s  %s" % (width, n, d) for n, d in lines)
            if len(lines) >= MAX_ENTRIES:
                body += "\n  ... (more not shown)"
            return head + body
        except (gdb.error, gdb.MemoryError, RuntimeError) as e:
            return "td::nn::Module <unreadable: %s>" % e


def _module_type():
    return gdb.lookup_type("td::nn::Module")


def _derives_from_module(t, depth=0):
    if t.code != gdb.TYPE_CODE_STRUCT or depth > 16:
        return False
    if t.tag == "td::nn::Module":
        return True
    for f in t.fields():
        if f.is_base_class and _derives_from_module(f.type.strip_typedefs(), depth + 1):
            return True
    return False


def lookup(val):
    t = val.type.strip_typedefs().unqualified()
    if t.code != gdb.TYPE_CODE_STRUCT:
        return None
    tag = t.tag or ""
    if tag == "td::Tensor":
        return TensorPrinter(val)
    if tag == "td::TensorImpl":
        return TensorImplPrinter(val)
    if tag.startswith("td::") and _derives_from_module(t):
        return ModulePrinter(val)
    return None


def register(objfile=None):
    target = objfile if objfile is not None else gdb
    # Replace an earlier copy when the file is sourced twice.
    target.pretty_printers[:] = [p for p in target.pretty_printers if not getattr(p, "tinydiffusion", False)]
    target.pretty_printers.insert(0, lookup)


lookup.tinydiffusion = True


register()

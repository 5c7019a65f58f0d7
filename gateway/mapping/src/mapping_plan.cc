#include "caregate/mapping/mapping_plan.h"

#include <algorithm>
#include <optional>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <unistd.h>

#include <boost/container/small_vector.hpp>

#include "caregate/core/hash.h"
#include "caregate/core/text.h"
#include "caregate/core/tree_sink.h"
#include "caregate/mapping/csv.h"
#include "caregate/mapping/values.h"
#include "caregate/model/field_registry.h"

#ifndef CAREGATE_SOURCE_MAPPINGS
#define CAREGATE_SOURCE_MAPPINGS ""
#endif

namespace caregate::mapping {

using model::CareRecord;
using model::CollectionDef;
using model::FieldDef;

namespace {

enum class TKind { kText, kId, kNhs, kDate, kDateTime, kOffsetDateTime, kLocalDateTime, kBool, kNumber, kInteger, kPostcode, kLines, kCode, kConst, kGroup };

struct Transform {
  TKind kind = TKind::kText;
  const CodeSet* set = nullptr;
  std::string constant;
  int system = -1;  // the system's column in `set`
};

struct PathSeg {
  std::string name;  // element / key / "@attr"
  bool repeat = false;
  // `name` interned in its SystemPlan: equal names have equal data(), so the writer
  // compares the elements it has open by address (SystemPlan::Align).
  std::string_view id;
};

struct Group;

struct FieldRule {
  const Rule* rule = nullptr;
  const FieldDef* field = nullptr;  // null for "-" rules
  Transform t;
  std::vector<PathSeg> rel;  // from the owning group's node
  bool in = true, out = true;
};

struct FieldAction {
  FieldRule* f;
  std::vector<Group*> via;  // implicit groups to materialise first
};

struct TrieNode {
  std::string name;
  std::vector<FieldAction> fields;
  Group* group = nullptr;
  std::vector<Group*> group_via;
  std::vector<std::unique_ptr<TrieNode>> children;
  const TrieNode* Find(std::string_view n) const {
    for (const auto& c : children)
      if (c->name == n) return c.get();
    return nullptr;
  }
  // The same, starting where the previous match left off: records usually list their
  // members in table order, so a walk over one node's children matches at once.
  const TrieNode* Find(std::string_view n, std::size_t& hint) const {
    const std::size_t size = children.size();
    for (std::size_t k = 0; k < size; ++k) {
      std::size_t i = hint + k < size ? hint + k : hint + k - size;
      if (children[i]->name == n) {
        hint = i + 1 < size ? i + 1 : 0;
        return children[i].get();
      }
    }
    return nullptr;
  }
  TrieNode* Ensure(const std::string& n) {
    for (auto& c : children)
      if (c->name == n) return c.get();
    children.push_back(std::make_unique<TrieNode>());
    children.back()->name = n;
    return children.back().get();
  }
};

struct Group {
  const Rule* rule = nullptr;            // null for the record root
  const CollectionDef* coll = nullptr;   // null for the record root
  model::Entity entity = model::Entity::kRecord;
  const FieldDef* filter_field = nullptr;
  std::vector<std::string> filter_values;
  std::vector<PathSeg> rel;  // from the parent group's node; empty = shares it (implicit)
  std::string abs_path;      // as written in the table
  Group* parent = nullptr;
  struct Item {
    FieldRule* field = nullptr;
    Group* group = nullptr;
  };
  std::vector<Item> items;  // table order: the order things are written in
  TrieNode trie;
  bool implicit() const { return coll && rel.empty(); }
  bool Matches(void* entity) const {
    if (!filter_field) return true;
    const std::string& v = filter_field->get(entity);
    return std::find(filter_values.begin(), filter_values.end(), v) != filter_values.end();
  }
};

std::vector<PathSeg> ParsePath(std::string_view path) {
  std::vector<PathSeg> out;
  if (path.empty() || path == ".") return out;
  for (auto part : Split(path, '/')) {
    if (part.empty()) continue;
    PathSeg s;
    if (part.size() > 2 && part.substr(part.size() - 2) == "[]") {
      s.repeat = true;
      part.remove_suffix(2);
    }
    s.name = std::string(part);
    out.push_back(std::move(s));
  }
  return out;
}

std::string JoinPath(const std::vector<PathSeg>& segs, size_t from = 0) {
  std::string s;
  for (size_t i = from; i < segs.size(); ++i) {
    if (!s.empty()) s += '/';
    s += segs[i].name;
    if (segs[i].repeat) s += "[]";
  }
  return s;
}

// Canonical path of a field inside its entity: full name at record level ("person.x"),
// local name inside collections (the caller adds "episodes[2].").
std::string_view FieldName(const FieldDef& f) { return f.owner == model::Entity::kRecord ? f.name : f.local; }

// Address lines and address structure are two views of one address (rule ADDR-4.3): a
// system that carries either carries both.
bool CarriedByAddressRule(std::string_view field, const std::vector<const FieldDef*>& mapped) {
  auto maps = [&](std::string_view name) {
    for (const FieldDef* f : mapped)
      if (f->name == name) return true;
    return false;
  };
  if (field.rfind("person.address.line_", 0) == 0) return maps("person.address.road") || maps("person.address.house_name");
  if (field == "person.address.house_name" || field == "person.address.house_number" ||
      field == "person.address.road" || field == "person.address.locality")
    return maps("person.address.line_1");
  return false;
}

void AppendJsonPointerToken(std::string& out, std::string_view name) {
  out += '/';
  bool plain = true;  // a loop: find_first_of searches the set once per character
  for (char c : name)
    if (c == '~' || c == '/') {
      plain = false;
      break;
    }
  if (plain) {
    out += name;
    return;
  }
  for (char c : name) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
}

// XPath positions of an element's children among their same-named siblings: 1, 2... for
// a name that repeats, 0 for a name that appears once. One pass over the children with a
// hash map, not a scan of them per child: 80,000 unknown siblings took 29 s that way.
std::vector<int> SiblingPositions(const SourceNode& n) {
  std::unordered_map<std::string_view, int> count;
  count.reserve(n.children.size());
  for (const auto& c : n.children) ++count[c.name];
  std::unordered_map<std::string_view, int> seen;
  std::vector<int> positions(n.children.size(), 0);
  for (std::size_t i = 0; i < n.children.size(); ++i) {
    const std::string_view name = n.children[i].name;
    if (count[name] > 1) positions[i] = ++seen[name];
  }
  return positions;
}

}  // namespace

class SystemPlan {
 public:
  SystemProfile profile;
  std::vector<Rule> rules;
  std::vector<std::unique_ptr<FieldRule>> field_rules;
  std::vector<std::unique_ptr<Group>> groups;  // groups[0] is the root
  std::vector<FieldRule*> const_rules_in;      // must be present when reading
  std::unordered_set<std::string> names;       // PathSeg::id's storage (nodes: stable addresses)

  void Intern(std::vector<PathSeg>& rel) {
    for (auto& seg : rel) seg.id = *names.insert(seg.name).first;
  }

  Group& root() const { return *groups[0]; }

  // ---- reading ----
  // Paths are built in two reusable buffers (source path, canonical path) that grow and
  // shrink as the walk descends and returns: no string per node on the hot path.
  struct ReadState {
    CareRecord& rec;
    FieldErrors& errors;
    bool lineage;
    std::vector<bool> const_seen;
    std::vector<std::pair<std::pair<const Group*, void*>, std::pair<void*, std::size_t>>> implicit;  // -> entity, index
    std::string path;   // current source path (XPath or JSON Pointer)
    std::string canon;  // current canonical prefix, e.g. "episodes[2]."
    std::vector<std::pair<const FieldDef*, std::string>> watched;  // source paths the record rules need
    // When set, `path` is only brought up to date on demand (Path()): the streaming
    // reader keeps the path as a stack of steps and spells it out only for an error, a
    // watched field or lineage. Null: `path` is always current (the tree walk).
    struct LazyPath {
      virtual ~LazyPath() = default;
      virtual void Fill(std::string& path) const = 0;
    };
    const LazyPath* lazy = nullptr;
  };

  static const std::string& Path(ReadState& st) {
    if (st.lazy) st.lazy->Fill(st.path);
    return st.path;
  }

  // Before a walk: buffers, watched paths, the root's path. After it: the record-level
  // rules (spec 3, 4.3, 4.4) and defaults; the record or every error.
  void Start(ReadState& st) const;
  // The record rules after the last value: true with st.rec complete, or false with
  // st.errors filled.
  bool Finish(ReadState& st) const;

  struct Mark {  // restores a buffer's length on scope exit
    std::string& s;
    std::size_t n;
    explicit Mark(std::string& str) : s(str), n(str.size()) {}
    ~Mark() { s.resize(n); }
  };

  void PushChild(std::string& p, std::string_view name, int index) const {
    if (profile.path_style == PathStyle::kXPath) {
      p += '/';
      p += name;
      if (index > 0) {
        p += '[';
        p += std::to_string(index);
        p += ']';
      }
    } else {
      AppendJsonPointerToken(p, name);
      if (index >= 0) {
        p += '/';
        p += std::to_string(index);
      }
    }
  }

  std::string ChildPath(const std::string& base, std::string_view name, int index) const {
    std::string p = base;
    PushChild(p, name, index);
    return p;
  }

  void PushIndex(std::string& p, std::size_t i) const {
    if (profile.path_style == PathStyle::kXPath) {
      p += '[';
      p += std::to_string(i + 1);
      p += ']';
    } else {
      p += '/';
      p += std::to_string(i);
    }
  }

  static void PushCanon(std::string& c, std::string_view local, std::size_t idx) {
    c += local;
    c += '[';
    c += std::to_string(idx);
    c += "].";
  }

  void CollectUnmapped(ReadState& st, const SourceNode& n) const {
    if (st.rec.unmapped.size() >= kMaxUnmappedItems) return;
    if (n.is_scalar()) {
      // Mixed XML content: the text beside child elements carries the document's
      // indentation, which is no data.
      const std::string_view v = n.name == "#text" ? Trim(n.value) : std::string_view(n.value);
      if (n.kind != NodeKind::kNull && !v.empty()) st.rec.unmapped.push_back({st.path, std::string(v)});
      return;
    }
    const bool xpath = profile.path_style == PathStyle::kXPath;
    // Repeated elements get [n] so their fields stay together.
    const std::vector<int> positions = xpath && n.kind != NodeKind::kArray ? SiblingPositions(n) : std::vector<int>();
    for (std::size_t i = 0; i < n.children.size(); ++i) {
      if (st.rec.unmapped.size() >= kMaxUnmappedItems) return;
      const SourceNode& c = n.children[i];
      Mark m(st.path);
      if (n.kind == NodeKind::kArray) PushIndex(st.path, i);
      else PushChild(st.path, c.name, xpath ? positions[i] : -1);
      CollectUnmapped(st, c);
    }
  }

  // Text in an element that holds child elements (or attributes) by our tables, with no
  // element around it: unknown content, which spec 1 says is kept and never makes a
  // record invalid. Kept as unmapped data under the same path as the text beside an
  // attribute (`.../Drug/#text`).
  // The text is trimmed, as a value's is; white space alone (an indented empty element)
  // is nothing.
  void CollectText(ReadState& st, const SourceNode& text) const {
    SourceNode element;
    element.kind = NodeKind::kObject;
    element.children.emplace_back(text).name = "#text";  // trimmed by CollectUnmapped
    CollectUnmapped(st, element);
  }

  // Finds or creates the entities of implicit groups; appends their canonical steps.
  void* Materialise(ReadState& st, const std::vector<Group*>& via, void* entity) const {
    for (Group* g : via) {
      void* found = nullptr;
      std::size_t idx = 0;
      for (auto& [key, e] : st.implicit)
        if (key.first == g && key.second == entity) {
          found = e.first;
          idx = e.second;
        }
      if (!found) {
        found = g->coll->append(entity);
        idx = g->coll->size(entity) - 1;
        if (g->filter_field && g->filter_values.size() == 1) g->filter_field->get(found) = g->filter_values[0];
        st.implicit.push_back({{g, entity}, {found, idx}});
      }
      if (st.lineage) PushCanon(st.canon, g->coll->local, idx);
      entity = found;
    }
    return entity;
  }

  // Source value -> canonical value; "" problem when fine.
  std::string ApplyIn(const FieldRule& f, NodeKind kind, std::string_view v, std::string& out) const {
    bool json = profile.path_style == PathStyle::kJsonPointer;
    switch (f.t.kind) {
      case TKind::kBool:
        if (json && kind != NodeKind::kBool) return "expected true or false";
        if (v != "true" && v != "false") return "expected true or false, found '" + std::string(v) + "'";
        out = v;
        return {};
      case TKind::kNumber:
      case TKind::kInteger:
        if (json && kind != NodeKind::kNumber) return "expected a number";
        break;
      default:
        if (json && kind != NodeKind::kString) return "expected a string";
    }
    switch (f.t.kind) {
      case TKind::kText: out = v; return {};
      case TKind::kId: out = Trim(v); return {};
      case TKind::kNhs: {
        out = v;
        return CheckNhsNumber(v);
      }
      case TKind::kDate: out = v; return CheckDate(v);
      case TKind::kDateTime:
      case TKind::kOffsetDateTime: {
        out = v;
        auto e = f.t.kind == TKind::kDateTime ? CheckDateTime(v) : CheckOffsetDateTime(v);
        return e.empty() ? CheckUkLocalRange(v) : e;
      }
      case TKind::kLocalDateTime: {
        if (auto e = CheckDateTime(v); !e.empty()) return e;
        out = UkLocalToOffset(v);
        return {};
      }
      case TKind::kNumber:
      case TKind::kInteger: {
        out = v;
        if (auto e = f.t.kind == TKind::kNumber ? CheckDecimal(v) : CheckInteger(v); !e.empty()) return e;
        if (out.size() > 1 && out[0] == '0') out = WithoutLeadingZeros(v);
        return {};
      }
      case TKind::kPostcode: out = NormalisePostcode(v); return {};
      case TKind::kLines: out = v; return {};
      case TKind::kCode: {
        const std::string* code = f.t.set->ToCanonical(f.t.system, v);
        if (!code)
          return "'" + std::string(v) + "' is not in code list " + f.t.set->name() + " (one of " +
                 f.t.set->ValuesFor(profile.name) + ")";
        out = *code;
        return {};
      }
      case TKind::kConst:
        if (v != f.t.constant) return "must be '" + f.t.constant + "', found '" + std::string(v) + "'";
        return {};
      default: return {};
    }
  }

  void ReadField(ReadState& st, const FieldAction& fa, const SourceNode& n, void* entity) const {
    const FieldRule& f = *fa.f;
    if (n.kind == NodeKind::kNull) return;
    if (f.t.kind == TKind::kLines && n.kind == NodeKind::kArray) {
      NoteConst(st, f);
      std::size_t i = 0;
      for (const auto& item : n.children) {
        Mark m(st.path);
        PushIndex(st.path, i++);
        ReadField(st, fa, item, entity);
      }
      return;
    }
    if (n.kind == NodeKind::kObject && profile.path_style == PathStyle::kXPath) {
      // An element of ours with attributes or child elements no rule knows: its text is
      // the value, and the rest is unmapped source data (spec 1: unknown content never
      // makes a record invalid). <Surname xml:lang="en">Smith</Surname> reads "Smith".
      const SourceNode* text = nullptr;
      bool has_elements = false;
      const std::vector<int> positions = SiblingPositions(n);
      for (std::size_t i = 0; i < n.children.size(); ++i) {
        const SourceNode& c = n.children[i];
        if (c.name == "#text") {
          text = &c;
          continue;
        }
        has_elements = has_elements || !c.name.starts_with('@');
        Mark m(st.path);
        PushChild(st.path, c.name, positions[i]);
        CollectUnmapped(st, c);
      }
      if (text != nullptr && text->is_scalar()) {
        // The text around child elements holds the document's indentation.
        ReadScalar(st, fa, text->kind, has_elements ? Trim(text->value) : std::string_view(text->value), entity);
      } else {
        NoteConst(st, f);
      }
      return;
    }
    if (!n.is_scalar()) {
      NoteConst(st, f);
      st.errors.push_back({st.path, "expected a single value, found " +
                                        std::string(n.kind == NodeKind::kArray ? "an array" : "nested content")});
      return;
    }
    ReadScalar(st, fa, n.kind, n.value, entity);
  }

  void NoteConst(ReadState& st, const FieldRule& f) const {
    if (f.t.kind != TKind::kConst) return;
    size_t idx = static_cast<size_t>(std::find(const_rules_in.begin(), const_rules_in.end(), &f) - const_rules_in.begin());
    if (idx < st.const_seen.size()) st.const_seen[idx] = true;
  }

  // One scalar value at st.path for the rule.
  void ReadScalar(ReadState& st, const FieldAction& fa, NodeKind kind, std::string_view v, void* entity) const {
    const FieldRule& f = *fa.f;
    if (kind == NodeKind::kNull) return;
    NoteConst(st, f);
    if (v.empty() && kind == NodeKind::kString && f.t.kind != TKind::kConst) {  // not recorded...
      // ...but a blank line after others (<Line/> between paragraphs) is one more line
      // end: "Para one.\n\nPara two." comes back from SystmOne as it went. (A blank first
      // line leaves nothing to tell it from no line; it is dropped.)
      if (f.t.kind == TKind::kLines && f.field && f.in) {
        Mark canon_mark(st.canon);
        std::string& slot = f.field->At(Materialise(st, fa.via, entity));
        if (!slot.empty()) slot += '\n';
      }
      return;
    }
    std::string value;
    std::string problem = ApplyIn(f, kind, v, value);
    if (!problem.empty()) {
      st.errors.push_back({Path(st), problem});
      return;
    }
    if (!f.field || !f.in) return;
    Mark canon_mark(st.canon);
    void* target = Materialise(st, fa.via, entity);
    std::string& slot = f.field->At(target);
    if (f.t.kind == TKind::kLines && !slot.empty()) {
      slot += '\n';
      slot += value;
    } else {
      slot = std::move(value);
    }
    for (auto& w : st.watched)
      if (w.first == f.field) w.second = Path(st);
    if (st.lineage)
      st.rec.lineage.push_back({st.canon + std::string(FieldName(*f.field)), Path(st), f.rule->id,
                                f.rule->lossy && f.t.kind != TKind::kCode});
  }

  // Value elements already read into the current entity, and how often each was met:
  // one value is expected per element, even across repeated containers (a second
  // <Identity> holding another <NHSNumber>).
  using ValuesSeen = std::vector<std::pair<const TrieNode*, int>>;

  void ReadNode(ReadState& st, const SourceNode& node, const TrieNode& trie, void* entity,
                ValuesSeen* entity_values = nullptr) const {
    ValuesSeen own_values;  // a new entity: nothing of it read yet
    ValuesSeen& values = entity_values ? *entity_values : own_values;
    // XPath indexes count same-named siblings; only repeating names need them. Known
    // names are few (the table's), so a short list counts them.
    std::vector<std::pair<const TrieNode*, int>> seen;
    std::vector<int> unknown_positions;  // for unknown elements, computed when one is met
    const bool xpath = profile.path_style == PathStyle::kXPath;
    std::size_t hint = 0;
    for (std::size_t ci = 0; ci < node.children.size(); ++ci) {
      const SourceNode& child = node.children[ci];
      const TrieNode* t = trie.Find(child.name, hint);
      int xpath_index = 0;
      if (t && xpath) {
        auto it = std::find_if(seen.begin(), seen.end(), [&](auto& p) { return p.first == t; });
        const int occurrence = it == seen.end() ? (seen.push_back({t, 1}), 1) : ++it->second;
        const bool repeats = t->group || (!t->fields.empty() && t->fields[0].f->t.kind == TKind::kLines);
        if (repeats || occurrence > 1) xpath_index = occurrence;  // containers may repeat: their contents merge
        if (!repeats && !t->fields.empty()) {
          auto v = std::find_if(values.begin(), values.end(), [&](auto& p) { return p.first == t; });
          const int times = v == values.end() ? (values.push_back({t, 1}), 1) : ++v->second;
          if (times > 1) {
            // One value is expected here: a second one would replace the first unseen
            // (JSON's duplicate keys are refused by the parser the same way).
            if (times == 2) {
              Mark m(st.path);
              PushChild(st.path, child.name, xpath_index);
              st.errors.push_back({st.path, "appears more than once; one is expected"});
            }
            continue;
          }
        }
      }
      Mark path_mark(st.path);
      if (!t && xpath) {  // unknown element: index it when it repeats, so its fields stay together
        if (unknown_positions.empty()) unknown_positions = SiblingPositions(node);
        xpath_index = unknown_positions[ci];
      }
      PushChild(st.path, child.name, xpath ? xpath_index : -1);
      if (!t) {
        CollectUnmapped(st, child);
        continue;
      }
      if (t->group) {
        Group* g = t->group;
        auto read_item = [&](const SourceNode& item) {
          if (item.kind != NodeKind::kObject) {
            if (item.kind == NodeKind::kNull || (item.kind == NodeKind::kString && item.value.empty())) return;
            if (xpath) return CollectText(st, item);  // <Visit>x</Visit>: kept, as unknown content
            st.errors.push_back({st.path, "expected an object"});
            return;
          }
          Mark canon_mark(st.canon);
          void* parent = Materialise(st, t->group_via, entity);
          void* e = g->coll->append(parent);
          size_t idx = g->coll->size(parent) - 1;
          if (g->filter_field && g->filter_values.size() == 1) g->filter_field->get(e) = g->filter_values[0];
          if (st.lineage) PushCanon(st.canon, g->coll->local, idx);
          ReadNode(st, item, g->trie, e);
        };
        if (child.kind == NodeKind::kArray) {
          std::size_t i = 0;
          for (const auto& item : child.children) {
            Mark m(st.path);
            PushIndex(st.path, i++);
            read_item(item);
          }
        } else if (!xpath && child.kind != NodeKind::kNull) {
          st.errors.push_back({st.path, "expected an array"});
        } else {
          read_item(child);
        }
        continue;
      }
      if (!t->fields.empty()) {
        for (const auto& fa : t->fields) ReadField(st, fa, child, entity);
        continue;
      }
      // A container.
      if (child.kind == NodeKind::kObject) {
        ReadNode(st, child, *t, entity, &values);
      } else if (!(child.kind == NodeKind::kNull || (child.kind == NodeKind::kString && child.value.empty()))) {
        if (xpath) {
          CollectText(st, child);  // <Drug>Paracetamol 500mg</Drug>: kept, as unknown content
        } else {
          st.errors.push_back({st.path, "expected an object"});
        }
      }
    }
  }

  // ---- writing ----
  // Streams the record through a TreeSink in table order. `open` holds the intermediate
  // objects currently open below the entity's own node; consecutive rows sharing a path
  // prefix share those objects (the compiler checks that such rows are contiguous).
  struct WriteState {
    TreeSink& sink;
    WriteReport* report;
    bool json;
    std::string canon;  // only maintained when a report is wanted
    std::string& converted;  // a value's text converted for the output, used at once
  };

  // The intermediate objects open below an entity's node (rarely more than a few: kept
  // inline, as are a collection's items, so writing a record allocates nothing here).
  using OpenPath = boost::container::small_vector<std::string_view, 8>;
  using Items = boost::container::small_vector<std::pair<void*, std::size_t>, 16>;

  static void Align(TreeSink& sink, OpenPath& open, const std::vector<PathSeg>& rel, std::size_t depth) {
    std::size_t shared = 0;
    while (shared < open.size() && shared < depth && open[shared].data() == rel[shared].id.data()) ++shared;
    while (open.size() > shared) {
      sink.Close();
      open.pop_back();
    }
    for (std::size_t i = shared; i < depth; ++i) {
      sink.Open(rel[i].id);
      open.push_back(rel[i].id);
    }
  }

  void WriteArray(const Group& sub, const Items& items, OpenPath& open, WriteState& ws,
                  const std::string& coll_prefix) const {
    const std::string& leaf = sub.rel.back().name;
    Align(ws.sink, open, sub.rel, sub.rel.size() - 1);
    ws.sink.OpenArray(leaf);
    for (const auto& [e, idx] : items) {
      ws.sink.Open(leaf);
      std::size_t mark = ws.canon.size();
      if (ws.report) {
        ws.canon += coll_prefix;
        ws.canon += std::string(sub.coll->local) + "[" + std::to_string(idx) + "].";
      }
      WriteEntity(e, sub, ws);
      ws.canon.resize(mark);
      ws.sink.Close();
    }
    ws.sink.CloseArray();
  }

  void WriteEntity(void* entity, const Group& g, WriteState& ws) const {
    OpenPath open;
    for (const auto& item : g.items) {
      if (item.field) {
        const FieldRule& f = *item.field;
        if (!f.out) continue;
        std::string_view value = f.t.kind == TKind::kConst ? std::string_view(f.t.constant)
                                                           : (f.field ? std::string_view(f.field->At(entity)) : std::string_view());
        NodeKind kind = NodeKind::kString;
        if (!value.empty()) {
          switch (f.t.kind) {
            case TKind::kCode: {
              const CodeValue* cv = f.t.set->FromCanonical(f.t.system, value);
              if (!cv) {
                if (ws.report)
                  ws.report->not_carried.push_back(ws.canon + std::string(FieldName(*f.field)) + "=" + std::string(value));
                value = {};
                break;
              }
              if (cv->lossy && ws.report)
                ws.report->lossy.push_back({ws.canon + std::string(FieldName(*f.field)), JoinPath(f.rel), f.rule->id, true});
              value = cv->value;
              break;
            }
            case TKind::kBool: kind = ws.json ? NodeKind::kBool : NodeKind::kString; break;
            case TKind::kNumber:
            case TKind::kInteger: kind = ws.json ? NodeKind::kNumber : NodeKind::kString; break;
            case TKind::kLocalDateTime:
              OffsetToUkLocal(value, ws.converted);
              value = ws.converted;
              break;
            default: break;
          }
        }
        if (value.empty()) {
          // Nulls keep a stable shape at record level; inside collections they are noise.
          if (!profile.emit_nulls || f.t.kind == TKind::kLines || g.coll) continue;
          kind = NodeKind::kNull;
        }
        Align(ws.sink, open, f.rel, f.rel.size() - 1);
        const std::string& leaf = f.rel.back().name;
        if (f.t.kind == TKind::kLines) {
          ws.sink.OpenArray(leaf);
          for (std::size_t from = 0;;) {  // one item per line, as Split(value, '\n')
            const std::size_t nl = value.find('\n', from);
            ws.sink.Value("", value.substr(from, nl == std::string_view::npos ? nl : nl - from), NodeKind::kString);
            if (nl == std::string_view::npos) break;
            from = nl + 1;
          }
          ws.sink.CloseArray();
        } else {
          ws.sink.Value(leaf, value, kind);
        }
        continue;
      }
      const Group& sub = *item.group;
      if (sub.rule->direction == Direction::kIn) continue;
      std::size_t n = sub.coll->size(entity);
      if (sub.implicit()) {
        // An implicit collection has no node of its own: its sub-collections gather the
        // items of every implicit entity into one array (CIS Goals of all care plans).
        for (const auto& inner : sub.items) {
          if (!inner.group) continue;
          const Group& ss = *inner.group;
          Items items;
          for (std::size_t i = 0; i < n; ++i) {
            void* pe = sub.coll->at(entity, i);
            if (!sub.Matches(pe)) continue;
            for (std::size_t j = 0; j < ss.coll->size(pe); ++j)
              if (ss.Matches(ss.coll->at(pe, j))) items.push_back({ss.coll->at(pe, j), j});
          }
          if (items.empty() && !(ws.json && profile.emit_nulls)) continue;
          WriteArray(ss, items, open, ws, ws.report ? std::string(sub.coll->local) + "[*]." : std::string());
        }
        continue;
      }
      Items items;
      for (std::size_t i = 0; i < n; ++i)
        if (sub.Matches(sub.coll->at(entity, i))) items.push_back({sub.coll->at(entity, i), i});
      if (items.empty() && !(ws.json && profile.emit_nulls && !g.coll)) continue;
      WriteArray(sub, items, open, ws, {});
    }
    static const std::vector<PathSeg> kNone;
    Align(ws.sink, open, kNone, 0);
  }

  // Content the target has no rule for (reported so nothing disappears unnoticed).
  void ReportNotCarried(void* entity, model::Entity type, const std::vector<const Group*>& groups,
                        const std::string& canon, WriteReport& report) const {
    std::vector<const FieldDef*> out_fields;
    for (const Group* g : groups)
      for (const auto& item : g->items)
        if (item.field && item.field->out && item.field->field) out_fields.push_back(item.field->field);
    for (const Group* g : groups)  // a one-value filter is carried by the group itself
      if (g->filter_field && g->filter_values.size() == 1) out_fields.push_back(g->filter_field);
    for (const FieldDef* fd : model::FieldsOf(type)) {
      if (fd->get(entity).empty()) continue;
      bool mapped = std::find(out_fields.begin(), out_fields.end(), fd) != out_fields.end() ||
                    CarriedByAddressRule(fd->name, out_fields);
      if (!mapped)
        report.not_carried.push_back(canon + std::string(FieldName(*fd)));
    }
    for (const CollectionDef* cd : model::CollectionsOf(type)) {
      std::vector<const Group*> subs;
      for (const Group* g : groups)
        for (const auto& item : g->items)
          if (item.group && item.group->coll == cd) subs.push_back(item.group);
      for (size_t i = 0; i < cd->size(entity); ++i) {
        void* e = cd->at(entity, i);
        std::string item_canon = canon + std::string(cd->local) + "[" + std::to_string(i) + "]";
        std::vector<const Group*> matching;
        for (const Group* g : subs)
          if (g->Matches(e)) matching.push_back(g);
        if (matching.empty()) {
          report.not_carried.push_back(item_canon);
          continue;
        }
        ReportNotCarried(e, cd->item, {matching.front()}, item_canon + ".", report);
      }
    }
  }
};

namespace {

const char* kColumns[] = {"rule", "canonical", "path", "transform", "direction", "lossy", "purpose"};

Expected<Transform> ParseTransform(const std::string& s, const std::string& system,
                                   const std::map<std::string, std::shared_ptr<const CodeSet>, std::less<>>& sets) {
  static const std::pair<const char*, TKind> kSimple[] = {
      {"text", TKind::kText},         {"id", TKind::kId},           {"nhs_number", TKind::kNhs},
      {"date", TKind::kDate},         {"datetime", TKind::kDateTime}, {"bool", TKind::kBool},
      {"uk_local_datetime", TKind::kLocalDateTime}, {"offset_datetime", TKind::kOffsetDateTime},
      {"number", TKind::kNumber},     {"integer", TKind::kInteger}, {"postcode", TKind::kPostcode},
      {"lines", TKind::kLines},       {"group", TKind::kGroup}};
  for (const auto& [name, kind] : kSimple)
    if (s == name) return Transform{kind, nullptr, {}, -1};
  if (s.rfind("code:", 0) == 0) {
    auto it = sets.find(s.substr(5));
    if (it == sets.end()) return FieldError{"", "unknown code set '" + s.substr(5) + "'"};
    if (!it->second->HasSystem(system))
      return FieldError{"", "code set '" + s.substr(5) + "' has no '" + system + "' column"};
    return Transform{TKind::kCode, it->second.get(), {}, it->second->SystemIndex(system)};
  }
  if (s.rfind("const:", 0) == 0) {
    if (s.size() == 6) return FieldError{"", "a const: transform needs a value (const:CIS_Client)"};
    return Transform{TKind::kConst, nullptr, s.substr(6), -1};
  }
  return FieldError{"", "unknown transform '" + s + "'"};
}

bool IsPrefix(const std::vector<PathSeg>& prefix, const std::vector<PathSeg>& path) {
  if (prefix.size() > path.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (prefix[i].name != path[i].name || prefix[i].repeat != path[i].repeat) return false;
  return true;
}

std::vector<PathSeg> AbsPath(const Group* g) {
  std::vector<const Group*> chain;
  for (const Group* p = g; p; p = p->parent) chain.push_back(p);
  std::vector<PathSeg> out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) out.insert(out.end(), (*it)->rel.begin(), (*it)->rel.end());
  return out;
}

Expected<std::unique_ptr<SystemPlan>> CompileSystem(
    const SystemProfile& profile, const std::string& file,
    const std::map<std::string, std::shared_ptr<const CodeSet>, std::less<>>& sets) {
  auto table = ReadCsvFile(file);
  if (!table) return table.errors();
  auto plan = std::make_unique<SystemPlan>();
  plan->profile = profile;
  FieldErrors errors;
  auto where = [&](int line) { return file + ":" + std::to_string(line); };
  for (const char* col : kColumns)
    if (table->Column(col) < 0) errors.push_back({where(table->header_line), std::string("missing column '") + col + "'"});
  if (!errors.empty()) return errors;

  plan->rules.reserve(table->rows.size());
  for (const auto& row : table->rows) {
    Rule r;
    r.id = table->Cell(row, table->Column("rule"));
    r.canonical = table->Cell(row, table->Column("canonical"));
    r.path = table->Cell(row, table->Column("path"));
    r.transform = table->Cell(row, table->Column("transform"));
    r.purpose = table->Cell(row, table->Column("purpose"));
    r.file = file;
    r.line = row.line;
    const std::string& dir = table->Cell(row, table->Column("direction"));
    const std::string& lossy = table->Cell(row, table->Column("lossy"));
    if (dir == "both") r.direction = Direction::kBoth;
    else if (dir == "in") r.direction = Direction::kIn;
    else if (dir == "out") r.direction = Direction::kOut;
    else errors.push_back({where(row.line), "direction must be both, in or out, not '" + dir + "'"});
    if (lossy != "yes" && lossy != "no") errors.push_back({where(row.line), "lossy must be yes or no, not '" + lossy + "'"});
    r.lossy = lossy == "yes";
    if (r.id.empty()) errors.push_back({where(row.line), "empty rule id"});
    for (const auto& prev : plan->rules)
      if (prev.id == r.id && !r.id.empty()) errors.push_back({where(row.line), "rule id '" + r.id + "' is used twice"});
    r.is_group = r.transform == "group";
    plan->rules.push_back(std::move(r));
  }
  // A table of no rules maps nothing: every record of the system would be refused or
  // empty, which is never what an edit meant.
  if (plan->rules.empty()) errors.push_back({where(table->header_line), "the table has no rules"});

  auto root = std::make_unique<Group>();
  plan->groups.push_back(std::move(root));

  // Groups first (a group row must precede the rows inside it, which also fixes write order).
  for (auto& r : plan->rules) {
    if (!r.is_group) continue;
    std::string name = r.canonical;
    std::string filter;
    if (auto lb = name.rfind('['); lb != std::string::npos && name.back() == ']' && lb + 2 < name.size()) {
      filter = name.substr(lb + 1, name.size() - lb - 2);
      name = name.substr(0, lb) + "[]";
    }
    const CollectionDef* coll = model::FindCollection(name);
    if (!coll) {
      errors.push_back({where(r.line), "unknown canonical collection '" + r.canonical + "'"});
      continue;
    }
    auto g = std::make_unique<Group>();
    g->rule = &r;
    g->coll = coll;
    g->entity = coll->item;
    g->abs_path = r.path;
    if (!filter.empty()) {
      auto eq = filter.find('=');
      std::string fname = std::string(name.substr(0, name.size())) + "." + filter.substr(0, eq);
      g->filter_field = eq == std::string::npos ? nullptr : model::FindField(fname);
      if (!g->filter_field) {
        errors.push_back({where(r.line), "bad filter '" + filter + "': expected field=value|value on " + name});
        continue;
      }
      const std::string values = filter.substr(eq + 1);  // Split returns views: keep the string alive
      for (auto v : Split(values, '|')) g->filter_values.emplace_back(v);
    }
    // Parent: the group of the enclosing collection whose path is a prefix of this one.
    std::string parent_coll;
    if (auto pos = name.rfind("[]."); pos != std::string::npos) parent_coll = name.substr(0, pos + 2);
    std::vector<PathSeg> abs = ParsePath(r.path);
    Group* parent = nullptr;
    size_t best = 0;
    for (auto& cand : plan->groups) {
      bool right_coll = parent_coll.empty() ? cand->coll == nullptr : (cand->coll && cand->coll->name == parent_coll);
      if (!right_coll) continue;
      auto cabs = AbsPath(cand.get());
      if (IsPrefix(cabs, abs) && (!parent || cabs.size() >= best)) {
        parent = cand.get();
        best = cabs.size();
      }
    }
    if (!parent) {
      errors.push_back({where(r.line), "no earlier group row for '" + parent_coll + "' contains path '" + r.path + "'"});
      continue;
    }
    g->parent = parent;
    g->rel.assign(abs.begin() + static_cast<long>(best), abs.end());
    if (!g->rel.empty() && !g->rel.back().repeat)
      errors.push_back({where(r.line), "a collection's path must end in a repeating step 'Name[]'"});
    for (size_t i = 0; i + 1 < g->rel.size(); ++i)
      if (g->rel[i].repeat) errors.push_back({where(r.line), "only the last step of a collection's path may repeat"});
    Group* raw = g.get();
    plan->groups.push_back(std::move(g));
    parent->items.push_back({nullptr, raw});
  }

  // Fields.
  for (auto& r : plan->rules) {
    if (r.is_group) continue;
    auto fr = std::make_unique<FieldRule>();
    fr->rule = &r;
    fr->in = r.direction != Direction::kOut;
    fr->out = r.direction != Direction::kIn;
    auto t = ParseTransform(r.transform, profile.name, sets);
    if (!t) {
      errors.push_back({where(r.line), t.errors()[0].problem});
      continue;
    }
    fr->t = t.value();
    std::string coll_name;
    if (r.canonical != "-") {
      fr->field = model::FindField(r.canonical);
      if (!fr->field) {
        errors.push_back({where(r.line), "unknown canonical field '" + r.canonical + "'"});
        continue;
      }
      if (auto pos = r.canonical.rfind("[]."); pos != std::string::npos) coll_name = r.canonical.substr(0, pos + 2);
    } else if (fr->t.kind != TKind::kConst) {
      errors.push_back({where(r.line), "a '-' rule must use a const: transform"});
      continue;
    }
    if (fr->t.kind == TKind::kCode && fr->out && fr->t.set->HasLossyTo(profile.name) && !r.lossy)
      errors.push_back({where(r.line), "lossy rule not marked lossy: code set '" + fr->t.set->name() +
                                           "' has values marked lossy_to_" + profile.name});
    std::vector<PathSeg> abs = ParsePath(r.path);
    if (abs.empty()) {
      errors.push_back({where(r.line), "empty path"});
      continue;
    }
    Group* owner = nullptr;
    size_t best = 0;
    for (auto& cand : plan->groups) {
      bool right_coll = coll_name.empty() ? cand->coll == nullptr : (cand->coll && cand->coll->name == coll_name);
      if (!right_coll) continue;
      auto cabs = AbsPath(cand.get());
      if (IsPrefix(cabs, abs) && cabs.size() < abs.size() && (!owner || cabs.size() >= best)) {
        owner = cand.get();
        best = cabs.size();
      }
    }
    if (!owner) {
      errors.push_back({where(r.line), coll_name.empty() ? "path '" + r.path + "' lies inside a collection's path"
                                                         : "no group row for '" + coll_name + "' contains path '" +
                                                               r.path + "'"});
      continue;
    }
    fr->rel.assign(abs.begin() + static_cast<long>(best), abs.end());
    for (size_t i = 0; i < fr->rel.size(); ++i)
      if (fr->rel[i].repeat && !(i + 1 == fr->rel.size() && fr->t.kind == TKind::kLines))
        errors.push_back({where(r.line), "a repeating step in a field's path needs a group row (or the lines transform)"});
    if (fr->t.kind == TKind::kLines && !fr->rel.back().repeat)
      errors.push_back({where(r.line), "the lines transform needs a path ending in 'Name[]'"});
    // Two rules for one target.
    for (const auto& item : owner->items) {
      if (!item.field) continue;
      const FieldRule& other = *item.field;
      if (fr->in && other.in && fr->field && other.field == fr->field)
        errors.push_back({where(r.line), "two rules for one target: '" + r.canonical + "' is also set by rule " +
                                             other.rule->id + " (line " + std::to_string(other.rule->line) + ")"});
      if (fr->out && other.out && JoinPath(other.rel) == JoinPath(fr->rel))
        errors.push_back({where(r.line), "two rules for one target: path '" + r.path + "' is also written by rule " +
                                             other.rule->id + " (line " + std::to_string(other.rule->line) + ")"});
    }
    FieldRule* raw = fr.get();
    plan->field_rules.push_back(std::move(fr));
    if (raw->t.kind == TKind::kConst && raw->in) plan->const_rules_in.push_back(raw);
    // Keep table order among fields and groups of one owner.
    auto& items = owner->items;
    auto pos = std::find_if(items.begin(), items.end(),
                            [&](const Group::Item& it) { return it.group && it.group->rule->line > r.line; });
    items.insert(pos, {raw, nullptr});
  }
  if (!errors.empty()) return errors;

  // Streaming-write checks: an implicit collection holds only collections; within one
  // node, attributes come before child elements; rows under one path are contiguous.
  for (auto& g : plan->groups) {
    if (g->implicit())
      for (const auto& item : g->items)
        if (item.field)
          errors.push_back({where(item.field->rule->line), "a collection with an empty path may hold only collections"});
    struct Open {
      std::string name;
      bool has_child = false;
      std::vector<std::string> closed;
    };
    std::vector<Open> stack(1);  // stack[0]: the group's own node
    auto align = [&](const std::vector<PathSeg>& rel, size_t depth, int line) {
      size_t shared = 0;
      while (shared + 1 < stack.size() && shared < depth && stack[shared + 1].name == rel[shared].name) ++shared;
      while (stack.size() > shared + 1) {
        std::string name = stack.back().name;
        stack.pop_back();
        stack.back().closed.push_back(name);
      }
      for (size_t i = shared; i < depth; ++i) {
        auto& parent = stack.back();
        if (std::find(parent.closed.begin(), parent.closed.end(), rel[i].name) != parent.closed.end())
          errors.push_back({where(line), "rows writing under '" + rel[i].name + "' must be next to each other"});
        parent.has_child = true;
        stack.push_back({rel[i].name, false, {}});
      }
    };
    for (const auto& item : g->items) {
      const std::vector<PathSeg>* rel = nullptr;
      int line = 0;
      if (item.field) {
        if (!item.field->out) continue;
        rel = &item.field->rel;
        line = item.field->rule->line;
      } else {
        if (item.group->rule->direction == Direction::kIn || item.group->implicit()) continue;
        rel = &item.group->rel;
        line = item.group->rule->line;
      }
      align(*rel, rel->size() - 1, line);
      const std::string& leaf = rel->back().name;
      if (!leaf.empty() && leaf[0] == '@') {
        if (stack.back().has_child)
          errors.push_back({where(line), "attribute '" + leaf + "' must come before the element's children"});
      } else {
        stack.back().has_child = true;
      }
    }
  }
  if (!errors.empty()) return errors;

  // Read-side tries; implicit groups hang their contents on the nearest real node.
  // A path's node, made as needed, and whether an earlier rule maps a step before it as a
  // value (Address as a value, then Address/Line_1).
  const auto walk = [](TrieNode& trie, const std::vector<PathSeg>& rel) {
    TrieNode* t = &trie;
    bool through_value = false;
    for (std::size_t i = 0; i < rel.size(); ++i) {
      t = t->Ensure(rel[i].name);
      through_value = through_value || (i + 1 < rel.size() && !t->fields.empty());
    }
    return std::pair<TrieNode*, bool>{t, through_value};
  };
  const auto through_value_error = [&](const Rule& rule) {
    return FieldError{where(rule.line), "path '" + rule.path +
                                            "' runs through a value another rule maps: a path cannot be both a "
                                            "value and a container"};
  };
  std::function<void(Group&, TrieNode&, std::vector<Group*>)> build = [&](Group& g, TrieNode& trie,
                                                                           std::vector<Group*> via) {
    for (auto& item : g.items) {
      if (item.field) {
        if (!item.field->in) continue;
        auto [t, through_value] = walk(trie, item.field->rel);
        if (t->group || !t->children.empty())
          errors.push_back({where(item.field->rule->line), "path '" + item.field->rule->path +
                                                               "' is both a value and a container"});
        else if (through_value)
          errors.push_back(through_value_error(*item.field->rule));
        t->fields.push_back({item.field, via});
      } else {
        Group& sub = *item.group;
        if (sub.rule->direction == Direction::kOut) continue;
        if (sub.implicit()) {
          auto v = via;
          v.push_back(&sub);
          build(sub, trie, v);
          continue;
        }
        auto [t, through_value] = walk(trie, sub.rel);
        if (t->group || !t->fields.empty())
          errors.push_back({where(sub.rule->line), "path '" + sub.rule->path + "' is mapped twice"});
        else if (through_value)
          errors.push_back(through_value_error(*sub.rule));
        t->group = &sub;
        t->group_via = via;
        build(sub, sub.trie, {});
      }
    }
  };
  build(plan->root(), plan->root().trie, {});
  if (!errors.empty()) return errors;
  for (auto& fr : plan->field_rules) plan->Intern(fr->rel);
  for (auto& g : plan->groups) plan->Intern(g->rel);
  return plan;
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

MappingPlan::~MappingPlan() = default;

Expected<std::shared_ptr<const MappingPlan>> MappingPlan::Compile(const std::string& dir,
                                                                  const std::vector<SystemProfile>& systems) {
  namespace fs = std::filesystem;
  std::shared_ptr<MappingPlan> plan(new MappingPlan());
  plan->dir_ = dir;
  FieldErrors errors;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return FieldError{dir, "mapping tables directory not found"};
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "codesets", ec))
    if (e.path().extension() == ".csv") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  Sha256 version;
  for (const auto& f : files) {
    auto set = CodeSet::Load(f.stem().string(), f.string());
    if (!set) {
      errors.insert(errors.end(), set.errors().begin(), set.errors().end());
      continue;
    }
    plan->code_sets_.emplace(f.stem().string(), set.value());
    version.update("codesets/" + f.filename().string() + "\n");
    version.update(ReadFileBytes(f.string()));
  }
  for (const auto& profile : systems) {
    std::string file = (fs::path(dir) / (profile.name + ".csv")).string();
    if (!fs::exists(file, ec)) {
      errors.push_back({file, "mapping table for system '" + profile.name + "' not found"});
      continue;
    }
    auto sys = CompileSystem(profile, file, plan->code_sets_);
    if (!sys) {
      errors.insert(errors.end(), sys.errors().begin(), sys.errors().end());
      continue;
    }
    version.update(profile.name + ".csv\n");
    version.update(ReadFileBytes(file));
    plan->plans_.emplace(profile.name, std::move(sys.value()));
  }
  // Rule ids name a rule in lineage and reports: one id, one rule, across the tables.
  std::map<std::string, const Rule*> ids;
  for (const auto& [name, sys] : plan->plans_)
    for (const auto& r : sys->rules)
      if (auto [it, fresh] = ids.emplace(r.id, &r); !fresh)
        errors.push_back({r.file + ":" + std::to_string(r.line),
                          "rule id '" + r.id + "' is also used at " + it->second->file + ":" +
                              std::to_string(it->second->line)});
  if (!errors.empty()) return errors;
  plan->version_ = version.hex_digest();
  return std::shared_ptr<const MappingPlan>(std::move(plan));
}

const SystemPlan& MappingPlan::Plan(std::string_view system) const {
  auto it = plans_.find(system);
  if (it == plans_.end()) throw FatalError(Problem::kUsage, "unknown system '" + std::string(system) + "'");
  return *it->second;
}

const SystemProfile* MappingPlan::Profile(std::string_view system) const {
  auto it = plans_.find(system);
  return it == plans_.end() ? nullptr : &it->second->profile;
}

const std::vector<Rule>& MappingPlan::Rules(std::string_view system) const { return Plan(system).rules; }

std::vector<std::string> MappingPlan::systems() const {
  std::vector<std::string> out;
  for (const auto& [name, p] : plans_) out.push_back(name);
  return out;
}

const std::vector<RecordRule>& RecordRules() {
  static const std::vector<RecordRule> kRules = {
      {"ID-3", "A record must identify somebody: an NHS number, a SystmOne id or a CIS id (spec 3)."},
      {"DATE-3", "A death date may not precede the birth date (spec 3)."},
      {"ADDR-4.3", "Address: SystmOne HouseName, 'HouseNumber Road', Locality fill CIS Line_1..3 in order; "
                   "a CIS line starting with a house number splits into HouseNumber and Road, the line before "
                   "it is HouseName and the line after it Locality; with no numbered line Line_1..3 are "
                   "HouseName, Road, Locality (spec 4.3)."},
      {"SHARE-4.4", "A record that states neither consent nor sensitivity is consent not asked and not "
                    "sensitive (spec 4.4)."},
  };
  return kRules;
}


namespace {
const FieldDef* const* WatchedFields() {
  // The date of death's path names it in the DATE-3 error. (The address rule's lineage
  // takes its paths from the lineage recorded, when there is one.)
  static const FieldDef* kWatched[] = {model::FindField("person.death_date"), nullptr};
  return kWatched;
}
}  // namespace

void SystemPlan::Start(ReadState& st) const {
  st.rec.source_system = profile.name;
  if (st.lineage) st.rec.lineage.reserve(64);
  st.const_seen.assign(const_rules_in.size(), false);
  for (const FieldDef* const* f = WatchedFields(); *f; ++f) st.watched.push_back({*f, {}});
  st.path.reserve(256);
  if (profile.path_style == PathStyle::kXPath) st.path = "/" + profile.root_name;
}

bool SystemPlan::Finish(ReadState& st) const {
  CareRecord& rec = st.rec;
  FieldErrors& errors = st.errors;
  const bool with_lineage = st.lineage;
  const std::string root_path = profile.path_style == PathStyle::kXPath ? "/" + profile.root_name : std::string();
  auto FindPath = [&](const CareRecord&, std::string_view field) -> std::string {
    for (const auto& w : st.watched)
      if (w.first->name == field) return w.second;
    return {};
  };
  for (size_t i = 0; i < const_rules_in.size(); ++i)
    if (!st.const_seen[i]) {
      std::string p = root_path;
      for (const auto& seg : const_rules_in[i]->rel) p = ChildPath(p, seg.name, -1);
      errors.push_back({p, "is required and must be '" + const_rules_in[i]->t.constant + "'"});
    }

  // Record rules (spec 3, 4.3, 4.4).
  auto& person = rec.person;
  if (person.nhs_number.empty() && person.s1_id.empty() && person.cis_id.empty()) {
    std::string where = profile.path_style == PathStyle::kXPath ? root_path + "/Response/Identity" : "";
    errors.push_back({where, "the record identifies nobody: no NHS number, SystmOne id or CIS id [ID-3]"});
  }
  if (!person.death_date.empty() && !person.birth_date.empty() && person.death_date < person.birth_date)
    errors.push_back({FindPath(rec, "person.death_date"),
                      "date of death " + person.death_date + " precedes date of birth " + person.birth_date + " [DATE-3]"});
  if (!errors.empty()) return false;
  auto& a = person.address;
  bool has_structure = !(a.house_name.empty() && a.house_number.empty() && a.road.empty() && a.locality.empty());
  bool has_lines = !(a.line_1.empty() && a.line_2.empty() && a.line_3.empty());
  // Lineage of a part made from others names the source paths it was made from (read
  // from the lineage already recorded for them: no path is tracked when there is none).
  // A part made of several names them all, as an XPath union does (" | ").
  auto sources_of = [&](std::initializer_list<std::string> fields) {
    std::string path;
    for (const auto& field : fields)
      for (const auto& p : rec.lineage)
        if (p.field == field && !p.source_path.empty()) {
          if (!path.empty()) path += " | ";
          path += p.source_path;
          break;
        }
    return path;
  };
  if (has_lines && !has_structure) {
    AddressLineSources from;
    auto s = SplitAddressLines(a.line_1, a.line_2, a.line_3, &from);
    a.house_name = s.house_name;
    a.house_number = s.house_number;
    a.road = s.road;
    a.locality = s.locality;
    if (with_lineage) {
      const std::pair<const char*, unsigned> parts[] = {
          {"house_name", from.house_name}, {"house_number", from.house_number}, {"road", from.road},
          {"locality", from.locality}};
      for (const auto& [f, used] : parts) {
        const unsigned lines = used;  // a variable of its own: clang before 16 cannot capture a structured binding
        if (lines == 0) continue;
        // A part joined from two lines names both (" | ", as an XPath union does) and is
        // lossy: SystmOne back to CIS gives one line where there were two.
        auto line = [&](int i) { return lines & (1u << i) ? "person.address.line_" + std::to_string(i + 1) : ""; };
        const bool joined = (lines & (lines - 1)) != 0;
        rec.lineage.push_back(
            {std::string("person.address.") + f, sources_of({line(0), line(1), line(2)}), "ADDR-4.3", joined});
      }
    }
  } else if (has_structure && !has_lines) {
    std::array<std::pair<AddressPart, AddressPart>, 3> from;
    JoinAddressLines({a.house_name, a.house_number, a.road, a.locality}, a.line_1, a.line_2, a.line_3, &from);
    if (with_lineage) {
      auto field_of = [](AddressPart part) -> std::string {
        switch (part) {
          case AddressPart::kHouseName: return "person.address.house_name";
          case AddressPart::kHouseNumber: return "person.address.house_number";
          case AddressPart::kRoad: return "person.address.road";
          case AddressPart::kLocality: return "person.address.locality";
          case AddressPart::kNone: break;
        }
        return {};
      };
      for (int line = 0; line < 3; ++line) {
        if (from[line].first == AddressPart::kNone) continue;
        // "HouseNumber Road" comes from two elements, and names both.
        rec.lineage.push_back({"person.address.line_" + std::to_string(line + 1),
                               sources_of({field_of(from[line].first), field_of(from[line].second)}), "ADDR-4.3",
                               false});
      }
    }
  }
  if (person.consent.empty()) {
    person.consent = "not_asked";
    if (with_lineage) rec.lineage.push_back({"person.consent", "", "SHARE-4.4", false});
  }
  if (person.sensitive.empty()) {
    person.sensitive = "false";
    if (with_lineage) rec.lineage.push_back({"person.sensitive", "", "SHARE-4.4", false});
  }
  if (const FieldDef* id = model::FindField(profile.record_id_field)) rec.source_record_id = id->get(&rec);
  return true;
}


Expected<CareRecord> MappingPlan::Read(std::string_view system, const SourceNode& root, bool with_lineage,
                                       std::vector<std::string>* readable_ids) const {
  const SystemPlan& sp = Plan(system);
  CareRecord rec;
  FieldErrors errors;
  SystemPlan::ReadState st{rec, errors, with_lineage, {}, {}, {}, {}, {}};
  sp.Start(st);
  if (sp.profile.path_style == PathStyle::kXPath && root.name != sp.profile.root_name)
    return FieldError{"/" + root.name, "expected a " + sp.profile.root_name + " element"};
  if (root.kind != NodeKind::kObject) return FieldError{st.path, "expected a record"};
  sp.ReadNode(st, root, sp.root().trie, &rec);
  if (!sp.Finish(st)) {
    if (readable_ids) *readable_ids = rec.person_ids();
    return errors;
  }
  return rec;
}

void MappingPlan::WriteTo(std::string_view system, const CareRecord& record, TreeSink& sink,
                          WriteReport* report) const {
  const SystemPlan& sp = Plan(system);
  auto* rec = const_cast<CareRecord*>(&record);  // accessors are non-const; nothing is modified
  thread_local std::string converted;  // kept, so that converting a value allocates nothing
  SystemPlan::WriteState ws{sink, report, sp.profile.path_style == PathStyle::kJsonPointer, {}, converted};
  sp.WriteEntity(rec, sp.root(), ws);
  if (report) sp.ReportNotCarried(rec, model::Entity::kRecord, {&sp.root()}, "", *report);
}

SourceNode MappingPlan::Write(std::string_view system, const CareRecord& record, WriteReport* report) const {
  SourceNode root;
  root.name = Plan(system).profile.root_name;
  root.kind = NodeKind::kObject;
  TreeBuilder builder(root);
  WriteTo(system, record, builder, report);
  return root;
}

// ---- streaming reader ----
// A stack of open containers mirrors SystemPlan::ReadNode's recursion: a mapped object
// matches its members against a trie node, a group's array turns each item into a new
// entity. What the tree walk handles by looking at a whole subtree (unmapped content,
// a rule's value that turns out to be an object or an array) is rare: such a subtree is
// captured into a small SourceNode and handed to the very same tree functions, so the
// two paths cannot drift apart on the odd cases.
class RecordReader::Impl : private SystemPlan::ReadState::LazyPath {
 public:
  explicit Impl(const SystemPlan& sp) : sp_(sp) {}

  void Begin(bool with_lineage) {
    // An empty record in the same storage (st_ refers to it): its strings and arrays keep
    // their capacity when the last record was finished in place.
    model::Reset(rec_);
    errors_.clear();
    st_.lineage = with_lineage;
    st_.implicit.clear();
    st_.path.clear();
    st_.canon.clear();
    st_.watched.clear();
    sp_.Start(st_);
    st_.lazy = this;
    stack_.clear();
    steps_.clear();
    capture_depth_ = skip_depth_ = 0;
    started_ = not_a_record_ = false;
  }

  Expected<CareRecord> Finish() {
    if (!FinishHere()) return std::move(errors_);
    return std::move(rec_);
  }

  Expected<const CareRecord*> FinishInPlace() {
    if (!FinishHere()) return std::move(errors_);
    return &rec_;
  }

  std::vector<std::string> ReadableIds() const { return rec_.person_ids(); }

  void Open(std::string_view name) {
    if (Nested([&] { builder_->Open(name); })) return;
    if (stack_.empty()) {
      if (started_) return;
      started_ = true;
      stack_.push_back({Kind::kMapped, &sp_.root().trie, &rec_, 0, 0, st_.canon.size()});
      return;
    }
    Frame& p = stack_.back();
    Step(p, name);
    if (p.kind == Kind::kGroupItems) {  // one item of a group: a new entity
      const std::size_t canon_len = st_.canon.size();
      const Group* g = p.trie->group;
      void* parent = sp_.Materialise(st_, p.trie->group_via, p.entity);
      void* e = g->coll->append(parent);
      const std::size_t idx = g->coll->size(parent) - 1;
      if (g->filter_field && g->filter_values.size() == 1) g->filter_field->get(e) = g->filter_values[0];
      if (st_.lineage) SystemPlan::PushCanon(st_.canon, g->coll->local, idx);
      stack_.push_back({Kind::kMapped, &g->trie, e, 0, 0, canon_len});
      return;
    }
    const TrieNode* t = p.trie->Find(name, p.hint);
    if (!t) return Capture(Deferred::kUnmapped, nullptr, p.entity, name, NodeKind::kObject);
    if (t->group) {
      Error("expected an array");
      return Skip();
    }
    if (!t->fields.empty()) return Capture(Deferred::kFields, t, p.entity, name, NodeKind::kObject);
    stack_.push_back({Kind::kMapped, t, p.entity, 0, 0, st_.canon.size()});
  }

  void OpenArray(std::string_view name) {
    if (Nested([&] { builder_->OpenArray(name); })) return;
    if (stack_.empty()) {
      if (started_) return;
      started_ = not_a_record_ = true;
      skip_depth_ = 1;  // no step was pushed for the root
      return;
    }
    Frame& p = stack_.back();
    Step(p, name);
    if (p.kind == Kind::kGroupItems) {
      Error("expected an object");
      return Skip();
    }
    const TrieNode* t = p.trie->Find(name, p.hint);
    if (!t) return Capture(Deferred::kUnmapped, nullptr, p.entity, name, NodeKind::kArray);
    if (t->group) {
      stack_.push_back({Kind::kGroupItems, t, p.entity, 0, 0, st_.canon.size()});
      return;
    }
    if (!t->fields.empty()) return Capture(Deferred::kFields, t, p.entity, name, NodeKind::kArray);
    Error("expected an object");
    Skip();
  }

  void Close() { End([&] { builder_->Close(); }); }
  void CloseArray() { End([&] { builder_->CloseArray(); }); }

  void Value(std::string_view name, std::string_view value, NodeKind kind) {
    if (capture_depth_ > 0) return builder_->Value(name, value, kind);
    if (skip_depth_ > 0) return;
    if (stack_.empty()) {
      if (!started_) started_ = not_a_record_ = true;
      return;
    }
    Frame& p = stack_.back();
    Step(p, name);
    ValueAt(p, name, value, kind);
    steps_.pop_back();
  }

 private:
  enum class Kind { kMapped, kGroupItems };
  struct Frame {
    Kind kind;
    const TrieNode* trie;  // kMapped: whose children the members are; kGroupItems: the node holding the group
    void* entity;
    std::size_t hint;       // where the last member matched in trie->children
    std::size_t index;      // kGroupItems: the next item's index
    std::size_t canon_len;  // the canonical prefix's length to restore on close
  };
  // One step of the source path below the record: a member name (a view into the
  // parser's buffer, valid while it parses) or an array index.
  struct PathStep {
    std::string_view name;
    std::size_t index;
    bool is_index;
  };
  enum class Deferred { kUnmapped, kFields };

  // The source path spelled out from the steps (JSON Pointer).
  void Fill(std::string& path) const override {
    path.clear();
    for (const PathStep& s : steps_) {
      if (s.is_index) sp_.PushIndex(path, s.index);
      else sp_.PushChild(path, s.name, -1);
    }
  }

  void Error(const char* problem) { st_.errors.push_back({SystemPlan::Path(st_), problem}); }

  void ValueAt(Frame& p, std::string_view name, std::string_view value, NodeKind kind) {
    const bool blank = kind == NodeKind::kNull || (kind == NodeKind::kString && value.empty());
    if (p.kind == Kind::kGroupItems) {
      if (!blank) Error("expected an object");
      return;
    }
    const TrieNode* t = p.trie->Find(name, p.hint);
    if (!t) {
      if (st_.rec.unmapped.size() < kMaxUnmappedItems && kind != NodeKind::kNull && !value.empty())
        st_.rec.unmapped.push_back({SystemPlan::Path(st_), std::string(value)});
      return;
    }
    if (t->group) {
      if (kind != NodeKind::kNull) Error("expected an array");
      return;
    }
    if (!t->fields.empty()) {
      for (const auto& fa : t->fields) sp_.ReadScalar(st_, fa, kind, value, p.entity);
      return;
    }
    if (!blank) Error("expected an object");
  }

  // The member's step in the source path.
  void Step(Frame& p, std::string_view name) {
    if (p.kind == Kind::kGroupItems) steps_.push_back({{}, p.index++, true});
    else steps_.push_back({name, 0, false});
  }

  // Inside a captured or skipped subtree: forwards (capture) or counts (skip) an opening.
  template <typename F>
  bool Nested(F forward) {
    if (capture_depth_ > 0) {
      forward();
      ++capture_depth_;
      return true;
    }
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return true;
    }
    return false;
  }

  void Capture(Deferred what, const TrieNode* t, void* entity, std::string_view name, NodeKind kind) {
    captured_.name.assign(name);
    captured_.value.clear();
    captured_.kind = kind;
    captured_.children.clear();
    builder_.emplace(captured_);
    capture_depth_ = 1;
    deferred_ = what;
    deferred_trie_ = t;
    deferred_entity_ = entity;
  }

  void Skip() { skip_depth_ = 1; }

  template <typename F>
  void End(F forward) {
    if (capture_depth_ > 0) {
      if (--capture_depth_ > 0) return forward();
      // The tree functions extend st_.path themselves: give them the current path and
      // switch the lazy form off while they run.
      Fill(st_.path);
      st_.lazy = nullptr;
      if (deferred_ == Deferred::kUnmapped) {
        sp_.CollectUnmapped(st_, captured_);
      } else {
        for (const auto& fa : deferred_trie_->fields) sp_.ReadField(st_, fa, captured_, deferred_entity_);
      }
      st_.lazy = this;
      steps_.pop_back();
      return;
    }
    if (skip_depth_ > 0) {
      if (--skip_depth_ == 0 && !steps_.empty() && !stack_.empty()) steps_.pop_back();
      return;
    }
    if (stack_.empty()) return;
    const Frame f = stack_.back();
    stack_.pop_back();
    if (!stack_.empty()) steps_.pop_back();  // the root has no step
    st_.canon.resize(f.canon_len);
  }

  const SystemPlan& sp_;
  // The record rules; false with errors_ holding every error.
  bool FinishHere() {
    if (!started_ || not_a_record_) {
      errors_.assign(1, FieldError{"", "expected a record"});
      return false;
    }
    st_.lazy = nullptr;
    st_.path.clear();  // JSON Pointer: the record's own path is ""
    return sp_.Finish(st_);
  }

  CareRecord rec_;
  FieldErrors errors_;
  SystemPlan::ReadState st_{rec_, errors_, false, {}, {}, {}, {}, {}};
  std::vector<Frame> stack_;
  std::vector<PathStep> steps_;
  SourceNode captured_;
  std::optional<TreeBuilder> builder_;
  int capture_depth_ = 0, skip_depth_ = 0;
  Deferred deferred_ = Deferred::kUnmapped;
  const TrieNode* deferred_trie_ = nullptr;
  void* deferred_entity_ = nullptr;
  bool started_ = false, not_a_record_ = false;
};

RecordReader::RecordReader(const MappingPlan& plan, std::string_view system) {
  const SystemPlan& sp = plan.Plan(system);
  if (sp.profile.path_style != PathStyle::kJsonPointer)
    throw FatalError(Problem::kInternal, "RecordReader reads JSON Pointer systems only, not " + sp.profile.name);
  impl_ = std::make_unique<Impl>(sp);
}
RecordReader::~RecordReader() = default;
void RecordReader::Begin(bool with_lineage) { impl_->Begin(with_lineage); }
Expected<CareRecord> RecordReader::Finish() { return impl_->Finish(); }
Expected<const CareRecord*> RecordReader::FinishInPlace() { return impl_->FinishInPlace(); }
std::vector<std::string> RecordReader::ReadableIds() const { return impl_->ReadableIds(); }
void RecordReader::Open(std::string_view name) { impl_->Open(name); }
void RecordReader::Close() { impl_->Close(); }
void RecordReader::OpenArray(std::string_view name) { impl_->OpenArray(name); }
void RecordReader::CloseArray() { impl_->CloseArray(); }
void RecordReader::Value(std::string_view name, std::string_view value, NodeKind kind) {
  impl_->Value(name, value, kind);
}

std::string DefaultMappingsDir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("CAREGATE_MAPPINGS"); env && *env) return env;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path candidate : {exe.parent_path().parent_path() / "share" / "caregate" / "mappings",
                               exe.parent_path() / "mappings"})
      if (fs::is_directory(candidate, ec)) return candidate.string();
  }
  return CAREGATE_SOURCE_MAPPINGS;
}

}  // namespace caregate::mapping

#include "caregate/model/canonical_json.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "caregate/core/text.h"
#include "caregate/model/field_registry.h"

namespace caregate::model {
namespace {

class Emitter {
 public:
  Emitter(std::string& out, bool pretty) : out_(out), pretty_(pretty) {}
  void Open(char c) { out_ += c; ++depth_; first_ = true; }
  void Close(char c) {
    --depth_;
    if (!first_) Newline();
    out_ += c;
    first_ = false;
  }
  void Key(std::string_view k) {
    Sep();
    out_ += '"';
    AppendJsonEscaped(out_, k);
    out_ += pretty_ ? "\": " : "\":";
  }
  void ArrayItem() { Sep(); }
  void String(std::string_view v) {
    out_ += '"';
    AppendJsonEscaped(out_, v);
    out_ += '"';
    first_ = false;
  }
  void Raw(std::string_view v) { out_ += v; first_ = false; }
  void KeyString(std::string_view k, std::string_view v) { Key(k); String(v); }

 private:
  void Sep() {
    if (!first_) out_ += ',';
    first_ = false;
    Newline();
  }
  void Newline() {
    if (!pretty_) return;
    out_ += '\n';
    out_.append(static_cast<size_t>(depth_) * 2, ' ');
  }
  std::string& out_;
  bool pretty_;
  int depth_ = 0;
  bool first_ = true;
};

void EmitEntity(Emitter& em, Entity type, void* entity) {
  // Record-level names are dotted ("person.address.town"): each dot opens one object
  // level. `open` is the stack of object levels currently open.
  std::vector<std::string_view> open;
  for (const FieldDef* f : FieldsOf(type)) {
    const std::string& v = f->get(entity);
    if (v.empty()) continue;
    std::vector<std::string_view> parts = type == Entity::kRecord ? Split(f->name, '.')
                                                                  : std::vector<std::string_view>{f->local};
    size_t depth = parts.size() - 1;  // object levels this field lives in
    size_t shared = 0;
    while (shared < open.size() && shared < depth && open[shared] == parts[shared]) ++shared;
    while (open.size() > shared) {
      em.Close('}');
      open.pop_back();
    }
    for (size_t i = shared; i < depth; ++i) {
      em.Key(parts[i]);
      em.Open('{');
      open.push_back(parts[i]);
    }
    em.KeyString(parts.back(), v);
  }
  for (size_t i = 0; i < open.size(); ++i) em.Close('}');
  for (const CollectionDef* c : CollectionsOf(type)) {
    size_t n = c->size(entity);
    if (n == 0) continue;
    em.Key(c->local);
    em.Open('[');
    for (size_t i = 0; i < n; ++i) {
      em.ArrayItem();
      em.Open('{');
      EmitEntity(em, c->item, c->at(entity, i));
      em.Close('}');
    }
    em.Close(']');
  }
}

void LoadEntity(const rapidjson::Value& obj, Entity type, void* entity, const std::string& prefix,
                FieldErrors& errors) {
  for (auto m = obj.MemberBegin(); m != obj.MemberEnd(); ++m) {
    std::string key(m->name.GetString(), m->name.GetStringLength());
    if (m->value.IsString()) {
      std::string full = type == Entity::kRecord ? prefix + key : std::string();
      const FieldDef* f = nullptr;
      if (type == Entity::kRecord) {
        f = FindField(full);
      } else {
        for (const FieldDef* cand : FieldsOf(type))
          if (cand->local == key) f = cand;
      }
      if (!f) {
        errors.push_back({"/" + prefix + key, "unknown canonical field"});
        continue;
      }
      f->get(entity).assign(m->value.GetString(), m->value.GetStringLength());
    } else if (m->value.IsObject() && type == Entity::kRecord) {
      LoadEntity(m->value, type, entity, prefix + key + ".", errors);
    } else if (m->value.IsArray()) {
      const CollectionDef* c = nullptr;
      for (const CollectionDef* cand : CollectionsOf(type))
        if (cand->local == key) c = cand;
      if (!c) {
        errors.push_back({"/" + prefix + key, "unknown canonical collection"});
        continue;
      }
      for (const auto& item : m->value.GetArray()) {
        if (!item.IsObject()) {
          errors.push_back({"/" + prefix + key, "collection item is not an object"});
          continue;
        }
        LoadEntity(item, c->item, c->append(entity), "", errors);
      }
    } else {
      errors.push_back({"/" + prefix + key, "unexpected value type"});
    }
  }
}

}  // namespace

std::string ToCanonicalJson(const CareRecord& record, const CanonicalJsonOptions& options) {
  std::string out;
  out.reserve(4096);
  Emitter em(out, options.pretty);
  em.Open('{');
  em.KeyString("source_system", record.source_system);
  if (!record.source_record_id.empty()) em.KeyString("source_record_id", record.source_record_id);
  em.Key("record");
  em.Open('{');
  EmitEntity(em, Entity::kRecord, const_cast<CareRecord*>(&record));
  em.Close('}');
  if (options.unmapped) {
    em.Key("unmapped");
    em.Open('[');
    for (const auto& u : record.unmapped) {
      em.ArrayItem();
      em.Open('{');
      em.KeyString("source_path", u.source_path);
      em.KeyString("value", u.value);
      em.Close('}');
    }
    em.Close(']');
  }
  if (options.lineage) {
    em.Key("lineage");
    em.Open('[');
    for (const auto& p : record.lineage) {
      em.ArrayItem();
      em.Open('{');
      em.KeyString("field", p.field);
      em.KeyString("source_path", p.source_path);
      em.KeyString("rule", p.rule);
      em.Key("lossy");
      em.Raw(p.lossy ? "true" : "false");
      em.Close('}');
    }
    em.Close(']');
  }
  em.Close('}');
  return out;
}

Expected<CareRecord> FromCanonicalJson(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (doc.HasParseError())
    return FieldError{"", std::string("canonical JSON not well-formed: ") + rapidjson::GetParseError_En(doc.GetParseError())};
  if (!doc.IsObject()) return FieldError{"", "canonical JSON is not an object"};
  CareRecord rec;
  FieldErrors errors;
  if (auto it = doc.FindMember("source_system"); it != doc.MemberEnd() && it->value.IsString())
    rec.source_system = it->value.GetString();
  if (auto it = doc.FindMember("source_record_id"); it != doc.MemberEnd() && it->value.IsString())
    rec.source_record_id = it->value.GetString();
  if (auto it = doc.FindMember("record"); it != doc.MemberEnd() && it->value.IsObject())
    LoadEntity(it->value, Entity::kRecord, &rec, "", errors);
  if (auto it = doc.FindMember("unmapped"); it != doc.MemberEnd() && it->value.IsArray())
    for (const auto& u : it->value.GetArray())
      if (u.IsObject() && u.HasMember("source_path") && u.HasMember("value") && u["source_path"].IsString() &&
          u["value"].IsString())
        rec.unmapped.push_back({u["source_path"].GetString(), u["value"].GetString()});
  if (auto it = doc.FindMember("lineage"); it != doc.MemberEnd() && it->value.IsArray())
    for (const auto& p : it->value.GetArray())
      if (p.IsObject() && p.HasMember("field") && p["field"].IsString() && p.HasMember("source_path") &&
          p["source_path"].IsString() && p.HasMember("rule") && p["rule"].IsString())
        rec.lineage.push_back({p["field"].GetString(), p["source_path"].GetString(), p["rule"].GetString(),
                               p.HasMember("lossy") && p["lossy"].IsBool() && p["lossy"].GetBool()});
  if (!errors.empty()) return errors;
  return rec;
}

}  // namespace caregate::model

#include "caregate/app/unified_view.h"

#include <algorithm>
#include <set>

#include "caregate/model/field_registry.h"

namespace caregate::app {

namespace {

bool IsAddress(std::string_view field) { return field.starts_with("person.address."); }

template <typename T>
void UnionByReference(std::vector<T>& into, const std::vector<T>& from, std::string_view collection,
                      std::string_view system, UnifiedView& view) {
  std::set<std::string> seen;
  for (const auto& item : into)
    if (!item.reference.empty()) seen.insert(item.reference);
  for (const auto& item : from) {
    if (!item.reference.empty() && seen.count(item.reference)) continue;
    into.push_back(item);
    view.field_sources.emplace_back(std::string(collection) + "[reference=" + item.reference + "]", system);
  }
}

}  // namespace

std::string_view OwnSystemOf(std::string_view organisation) {
  if (organisation == "health") return "systmone";
  if (organisation == "council") return "cis";
  return "";
}

void RedactForOtherOrganisation(model::CareRecord& r) {
  model::RedactContactDetails(r);
  // Source data no rule maps may hold an address, a phone number or an email under a key
  // nothing recognises (a "Previous_Address", a "Phone_Work"): none of it is shown.
  r.unmapped.clear();
}

std::optional<UnifiedView> BuildUnifiedView(const identity::PersonSnapshot& person, const ViewRequest& req) {
  const std::string_view own = OwnSystemOf(req.organisation);
  UnifiedView v;
  // The records this caller may see, with the other organisation's rules applied.
  std::optional<model::CareRecord> shown[2];
  const char* systems[2] = {"systmone", "cis"};
  for (int i = 0; i < 2; ++i) {
    const model::CareRecord* r = person.record(systems[i]);
    if (r == nullptr) continue;
    const bool other = systems[i] != own;
    if (other && !req.unrestricted && r->consent_withheld()) {
      v.consent_withheld_other = true;
      continue;
    }
    shown[i] = *r;
    if (other && !req.unrestricted && r->is_sensitive()) {
      RedactForOtherOrganisation(*shown[i]);
      v.redacted_other = true;
    }
  }
  if (!shown[0] && !shown[1]) return std::nullopt;

  std::string_view primary = req.view == "systmone" || req.view == "cis" ? req.view : own;
  if (primary.empty()) primary = "systmone";
  int p = primary == "systmone" ? 0 : 1;
  if (!shown[p]) p = 1 - p;
  const int s = 1 - p;
  v.primary = systems[p];
  v.record = std::move(*shown[p]);
  v.systems.push_back(systems[p]);
  model::CareRecord& m = v.record;

  bool primary_has_address = false;
  for (const auto& f : model::AllFields()) {
    if (f.owner != model::Entity::kRecord || !f.name.starts_with("person.")) continue;
    if (!f.get(&m).empty()) {
      v.field_sources.emplace_back(std::string(f.name), systems[p]);
      primary_has_address |= IsAddress(f.name);
    }
  }
  if (shown[s]) {
    model::CareRecord& o = *shown[s];
    v.systems.push_back(systems[s]);
    std::set<std::string_view> filled;
    for (const auto& f : model::AllFields()) {
      if (f.owner != model::Entity::kRecord || !f.name.starts_with("person.")) continue;
      // An address is one unit: never half from one system and half from the other.
      if (IsAddress(f.name) && primary_has_address) continue;
      std::string& mine = f.get(&m);
      std::string& theirs = f.get(&o);
      if (mine.empty() && !theirs.empty()) {
        mine = theirs;
        filled.insert(f.name);
        v.field_sources.emplace_back(std::string(f.name), systems[s]);
      }
    }
    for (const auto& prov : o.lineage)
      if (filled.count(prov.field)) m.lineage.push_back(prov);
    UnionByReference(m.episodes, o.episodes, "episodes", systems[s], v);
    UnionByReference(m.care_plans, o.care_plans, "care_plans", systems[s], v);
    UnionByReference(m.visits, o.visits, "visits", systems[s], v);
    UnionByReference(m.entries, o.entries, "entries", systems[s], v);
    UnionByReference(m.tasks, o.tasks, "tasks", systems[s], v);
  }
  // The ids the person is known by: both systems' and those learnt by linking. When the
  // other organisation's record is withheld, only those the shown records carry: any
  // other came from the withheld side (its own ids, or ids an earlier version of it
  // carried, which the index keeps), and that the other organisation knows the person is
  // part of its record.
  std::vector<std::string> shown_ids = m.person_ids();
  if (shown[s]) {
    auto more = shown[s]->person_ids();
    shown_ids.insert(shown_ids.end(), more.begin(), more.end());
  }
  for (const auto& id : person.ids) {
    const bool carried = std::find(shown_ids.begin(), shown_ids.end(), id) != shown_ids.end();
    if (v.consent_withheld_other && !carried) continue;
    v.person_ids.push_back(id);
    // The record's id fields are filled in only from ids a shown record carries now (the
    // link, spec 5): one the index keeps from an earlier version (a SystmOne id the
    // council claimed, then withdrew) is history, not a link.
    if (!carried) continue;
    if (id.starts_with("nhs:") && m.person.nhs_number.empty()) m.person.nhs_number = id.substr(4);
    if (id.starts_with("s1:") && m.person.s1_id.empty()) m.person.s1_id = id.substr(3);
    if (id.starts_with("cis:") && m.person.cis_id.empty()) m.person.cis_id = id.substr(4);
  }
  return v;
}

}  // namespace caregate::app

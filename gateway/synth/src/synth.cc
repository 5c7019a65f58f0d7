#include "caregate/synth/synth.h"

#include <array>

#include "caregate/format/json.h"
#include "caregate/format/xml.h"
#include "caregate/mapping/values.h"

namespace caregate::synth {
namespace {

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {  // splitmix64
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
  bool chance(int percent) { return below(100) < static_cast<std::uint64_t>(percent); }
  template <typename T, std::size_t N>
  const T& pick(const std::array<T, N>& a) { return a[below(N)]; }
};

const std::array<const char*, 24> kGiven = {
    "Richard", "Zoë", "Siân", "Seán", "Renée", "José", "Mary-Jane", "Ngozi", "Mohammed", "Aleksandra",
    "Krzysztof", "Bhupinder", "Aoife", "Dylan", "Ruth", "Eleanor", "Jean-Paul", "Margaret", "Gwilym",
    "Oluwaseun", "Thi Hoa", "Björn", "Anne Marie", "Joseph"};
const std::array<const char*, 24> kFamily = {
    "Smith", "O'Brien", "Jones", "van der Berg", "Ní Dhomhnaill", "Khan", "Nowak", "Okonkwo-Adeyemi",
    "MacDonald", "D'Souza", "Ahmed", "Brontë", "Nguyen", "Patel", "Wright", "Łukasiewicz", "Fitzgerald",
    "Kaur", "Øvergaard", "Hussain", "Clarke", "Evans", "Li", "Adebayo"};
const std::array<const char*, 6> kTitle = {"Mr", "Mrs", "Ms", "Miss", "Dr", "Mx"};
const std::array<const char*, 12> kRoad = {"Mill Lane", "Church Street", "Bridge Road", "Otley Road",
                                           "Harehills Avenue", "Kirkstall Lane", "Town Street", "Dewsbury Road",
                                           "Stonegate Road", "Tong Road", "Headingley Lane", "York Road"};
const std::array<const char*, 8> kHouseName = {"Rose Cottage", "The Old Vicarage", "Flat 3, Ash Court",
                                               "Aire View", "Holly House", "Flat 12B, Cavendish Mill",
                                               "The Bungalow", "Ty Gwyn"};
const std::array<const char*, 8> kLocality = {"Armley", "Headingley", "Chapel Allerton", "Beeston", "Moortown",
                                              "Seacroft", "Bramley", "Harehills"};
const std::array<const char*, 21> kEthnicity = {
    "white_british", "white_irish", "white_gypsy_traveller", "white_roma", "white_other",
    "mixed_white_black_caribbean", "mixed_white_black_african", "mixed_white_asian", "mixed_other", "asian_indian",
    "asian_pakistani", "asian_bangladeshi", "asian_chinese", "asian_other", "black_caribbean", "black_african",
    "black_other", "other_arab", "other_any", "refused", "not_known"};
const std::array<const char*, 4> kGender = {"male", "female", "indeterminate", "unknown"};
const std::array<const char*, 5> kRoute = {"hospital_discharge", "hospital_diversion", "community", "gp", "self"};
const std::array<const char*, 5> kNotes = {
    "Managed breakfast with prompting. Daughter visits daily.",
    "Pain < 3/10 & improving; walked to the end of the road with a stick.",
    "No answer at the door; key safe code checked with \"family\".",
    "Discussed goals:\nmake a hot drink\nwalk to the shop",
    "Declined shower today, agreed to try tomorrow — see care plan."};
const std::array<const char*, 5> kGoals = {"Make a hot drink independently", "Walk to the corner shop with a stick",
                                           "Get in and out of the bath safely", "Prepare a simple meal",
                                           "Manage medication with a dosette box"};

std::string Digits(Rng& r, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>('0' + r.below(10));
  return s;
}

std::string Date(Rng& r, int year_from, int year_to) {
  int y = year_from + static_cast<int>(r.below(static_cast<std::uint64_t>(year_to - year_from + 1)));
  int m = 1 + static_cast<int>(r.below(12));
  int d = 1 + static_cast<int>(r.below(28));
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  return buf;
}

std::string AddDays(const std::string& date, int days) {
  // Good enough for synthetic data: stays within the month's first 28 days plus carry.
  int y = std::stoi(date.substr(0, 4)), m = std::stoi(date.substr(5, 2)), d = std::stoi(date.substr(8, 2)) + days;
  while (d > 28) {
    d -= 28;
    if (++m > 12) {
      m = 1;
      ++y;
    }
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  return buf;
}

std::string Postcode(Rng& r) {
  static const char* kLetters = "ABDEFGHJLNPQRSTUWXYZ";
  std::string pc = "LS" + std::to_string(1 + r.below(29)) + " " + std::to_string(r.below(10)) + kLetters[r.below(20)] +
                   kLetters[r.below(20)];
  if (r.chance(10)) {  // as typed by a busy clerk: lower case, no space
    std::string messy;
    for (char c : pc)
      if (c != ' ') messy += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return messy;
  }
  return pc;
}

}  // namespace

std::string SyntheticNhsNumber(std::uint64_t n) {
  for (std::uint64_t k = n;; k += 7919) {
    std::string s = "99" + std::to_string(1000000 + k % 9000000).substr(0, 7);
    int sum = 0;
    for (int i = 0; i < 9; ++i) sum += (s[static_cast<size_t>(i)] - '0') * (10 - i);
    int check = 11 - sum % 11;
    if (check == 11) check = 0;
    if (check == 10) continue;
    return s + static_cast<char>('0' + check);
  }
}

model::CareRecord Generator::Make(std::uint64_t i) const {
  Rng r{seed_ * 0x100000001B3ULL ^ (i + 1) * 0x9E3779B97F4A7C15ULL};
  model::CareRecord rec;
  auto& p = rec.person;
  bool cis = format_ == "cis";
  rec.source_system = cis ? "cis" : "systmone";
  p.cis_id = (cis || r.chance(60)) ? "LCC-" + std::to_string(1000000 + i) : "";
  p.s1_id = (!cis || r.chance(60)) ? std::to_string(700000 + i * 7) : "";
  p.nhs_number = r.chance(90) ? SyntheticNhsNumber(i * 104729 + seed_) : "";
  if (p.cis_id.empty() && p.s1_id.empty() && p.nhs_number.empty()) p.s1_id = std::to_string(700000 + i * 7);
  if (cis) p.la_code = "E08000035";
  p.title = r.pick(kTitle);
  p.given_name = r.pick(kGiven);
  if (r.chance(40)) p.middle_names = r.pick(kGiven);
  p.family_name = r.pick(kFamily);
  p.birth_date = Date(r, 1925, 1985);
  if (r.chance(3)) p.death_date = Date(r, 2023, 2025);
  p.gender = kGender[r.below(100) < 48 ? 0 : r.below(100) < 96 ? 1 : 2 + r.below(2)];
  if (r.chance(85)) p.ethnicity = r.pick(kEthnicity);
  p.language = r.chance(90) ? "English" : (r.chance(50) ? "Polish" : "Urdu");
  if (cis) p.interpreter_required = p.language == "English" ? "no" : "yes";
  else p.english_speaker = p.language == "English" ? "yes" : (r.chance(50) ? "no" : "unknown");
  auto& a = p.address;
  if (r.chance(25)) a.house_name = r.pick(kHouseName);
  if (a.house_name.empty() || r.chance(50)) {
    a.house_number = std::to_string(1 + r.below(240));
    if (r.chance(10)) a.house_number += "A";
    else if (r.chance(5)) a.house_number += "-" + std::to_string(std::stoi(a.house_number) + 2);
    a.road = r.pick(kRoad);
  }
  if (r.chance(70)) a.locality = r.pick(kLocality);
  a.town = "Leeds";
  if (r.chance(60)) a.county = "West Yorkshire";
  a.postcode = mapping::NormalisePostcode(Postcode(r));
  mapping::JoinAddressLines({a.house_name, a.house_number, a.road, a.locality}, a.line_1, a.line_2, a.line_3);
  if (r.chance(70)) p.phone_home = "0113 496 " + Digits(r, 4);
  if (r.chance(60)) p.phone_mobile = "07700 900" + Digits(r, 3);
  if (r.chance(30)) p.email = "person" + std::to_string(i) + "@example.org";
  p.gp_practice = "B86" + Digits(r, 3);
  int c = static_cast<int>(r.below(100));
  p.consent = c < 85 ? "yes" : c < 93 ? "not_asked" : "no";
  p.sensitive = r.chance(5) ? "true" : "false";
  std::string start = Date(r, 2023, 2025);
  if (cis) {
    p.client_type = "Service User";
    p.primary_support_reason = r.chance(70) ? "Physical Support: Personal care support" : "Memory and Cognition";
    p.accommodation_status = "Owner occupier or shared ownership scheme";
    p.has_unpaid_carer = r.chance(40) ? "Yes" : "No";
    p.last_updated = mapping::UkLocalToOffset(AddDays(start, 20) + "T16:40:00");
    std::string ref = std::to_string(10000 + i);
    rec.episodes.push_back({"request", "REQ-" + ref, start, start, "progress_reablement", r.pick(kRoute), "", "", "",
                            "", "", "", "", "", "", "", "", "", "", ""});
    if (r.chance(80)) {
      model::Episode e;
      e.kind = "assessment";
      e.reference = "ASM-" + ref;
      e.start_date = e.end_date = AddDays(start, 1);
      e.assessment_type = "Short Term Assessment";
      e.eligible_needs = "Yes";
      e.outcome = "progress_reablement";
      rec.episodes.push_back(e);
      model::Episode s;
      s.kind = "service";
      s.reference = "SRV-" + ref;
      s.start_date = AddDays(start, 1);
      s.end_date = AddDays(start, 27);
      s.service_type = "Short Term Support: ST-Max";
      s.service_component = "Reablement";
      s.delivery_mechanism = "CASSR Managed Personal Budget";
      s.planned_units_per_week = std::to_string(1 + r.below(14));
      s.unit_cost = std::to_string(18 + r.below(10)) + ".5";
      s.cost_frequency = "Hourly";
      s.outcome = "nfa_ended_as_planned";
      rec.episodes.push_back(s);
      if (r.chance(60)) {
        model::Episode v;
        v.kind = "review";
        v.reference = "REV-" + ref;
        v.start_date = v.end_date = AddDays(start, 27);
        v.review_reason = "Planned";
        v.outcome = "nfa_ended_as_planned";
        rec.episodes.push_back(v);
      }
    }
    int goals = static_cast<int>(r.below(4));
    if (goals > 0) {
      model::CarePlan plan;
      for (int g = 0; g < goals; ++g)
        plan.goals.push_back({"G-" + std::to_string(g + 1), r.pick(kGoals), AddDays(start, 1),
                              g == 0 ? AddDays(start, 12) : "", g == 0 ? "achieved" : "in_progress"});
      rec.care_plans.push_back(std::move(plan));
    }
    int notes = static_cast<int>(r.below(4));
    for (int n = 0; n < notes; ++n) {
      model::Entry e;
      e.reference = "N-" + std::to_string(i * 10 + static_cast<std::uint64_t>(n));
      e.date_time = mapping::UkLocalToOffset(AddDays(start, 2 + n) + "T11:05:00");
      e.author = r.chance(50) ? "K. Ahmed" : "J. O'Neill";
      e.author_role = "Reablement Support Worker";
      e.text = r.pick(kNotes);
      rec.entries.push_back(std::move(e));
    }
  } else {
    rec.envelope.function = "GetPatientRecord";
    rec.envelope.function_version = "1.0";
    rec.envelope.response_uid = "SYN-" + std::to_string(seed_) + "-" + std::to_string(i);
    p.marital_status = r.chance(50) ? "Married" : "Widowed";
    p.sms_consent = r.chance(50) ? "Yes" : "No";
    p.gp_user = "dr.patel";
    p.care_start_date = start;
    p.registration_type = "Community";
    p.record_state = "Active";
    model::Entry ev;
    ev.reference = "a1b2" + std::to_string(100000000000ULL + i);
    ev.date_time = start + "T10:15:00";
    ev.done_at = "Home visit";
    ev.author = "JONES, Amy (Occupational Therapist)";
    ev.user_name = "ajones";
    ev.text = r.pick(kNotes);
    ev.codes.push_back({"XaBLf", "ctv3", "Referral to reablement service"});
    if (r.chance(20))
      ev.medications.push_back({"Acute", "Paracetamol 500mg tablets", "12345", "dm+d", "Two tablets four times a day",
                                "32 tablet", start, "", ""});
    rec.entries.push_back(std::move(ev));
    model::Episode ref;
    ref.kind = "request";
    ref.reference = "c7e1" + std::to_string(100000000000ULL + i);
    ref.start_date = start;
    ref.route_of_access = r.chance(70) ? "hospital_discharge" : "gp";
    ref.referral_service_type = "Reablement";
    ref.urgency = r.chance(30) ? "Urgent" : "Routine";
    ref.reason = "Reduced mobility after fall";
    ref.outcome = "progress_reablement";
    ref.discharge_date = AddDays(start, 26);
    ref.discharge_reason = "Goals achieved";
    rec.episodes.push_back(ref);
    model::CarePlan plan;
    plan.reference = "d9f0" + std::to_string(100000000000ULL + i);
    plan.aim = r.chance(70) ? "rehabilitation" : "enabling";
    plan.start_date = start;
    plan.end_date = AddDays(start, 26);
    plan.goals.push_back({"e100" + std::to_string(100000000000ULL + i), r.pick(kGoals), start, AddDays(start, 21),
                          "achieved"});
    rec.care_plans.push_back(std::move(plan));
    int visits = 1 + static_cast<int>(r.below(3));
    for (int v = 0; v < visits; ++v)
      rec.visits.push_back({"f200" + std::to_string(100000000000ULL + i * 10 + static_cast<std::uint64_t>(v)),
                            AddDays(start, 2 + v) + "T09:30:00", v == 1 && r.chance(30) ? "no_access" : "completed",
                            "Support Worker", std::to_string(30 + 15 * r.below(3))});
  }
  return rec;
}

namespace {
// Makes record i invalid in one of several realistic ways.
void Corrupt(SourceNode& tree, bool cis, std::uint64_t i, std::string& line) {
  auto set = [&](std::initializer_list<const char*> path, const char* value) {
    SourceNode* n = &tree;
    for (const char* seg : path) {
      SourceNode* next = nullptr;
      for (auto& c : n->children)
        if (c.name == seg) next = &c;
      if (!next) next = &n->add(seg, NodeKind::kObject);
      n = next;
    }
    n->kind = NodeKind::kString;
    n->value = value;
    n->children.clear();
  };
  switch (i % 6) {
    case 0:
      cis ? set({"NHS_Number"}, "9912003880") : set({"Response", "Identity", "NHSNumber"}, "9912003880");
      break;
    case 1:
      cis ? set({"Date_of_Birth"}, "1950-02-30") : set({"Response", "Demographics", "DateOfBirth"}, "1950-02-30");
      break;
    case 2: cis ? set({"Gender"}, "7") : set({"Response", "Demographics", "Sex"}, "Q"); break;
    case 3:
      if (cis) {
        line = line.substr(0, line.size() / 2) + "\n";  // truncated line
        return;
      }
      set({"Response", "Demographics", "DateOfDeath"}, "1900-01-01");
      break;
    case 4:
      cis ? set({"Ethnicity"}, "Martian") : set({"Response", "Demographics", "Ethnicity"}, "W");
      break;
    default:
      cis ? set({"Consent_To_Share"}, "Maybe") : set({"Response", "Community", "Sharing", "ConsentToShare"}, "Maybe");
  }
}
}  // namespace

void WriteSynth(const engine::Engine& engine, const SynthOptions& options, std::FILE* out) {
  bool cis = options.format == "cis";
  Generator gen(options.seed, options.format);
  const adapters::Adapter& adapter = engine.adapter(options.format);
  std::string buf = adapter.BatchBegin();
  for (std::uint64_t i = 0; i < options.records; ++i) {
    model::CareRecord rec = gen.Make(i);
    SourceNode tree = engine.plan().Write(options.format, rec);
    std::string one;
    bool bad = options.invalid_every > 0 && (i + 1) % options.invalid_every == 0;
    if (bad && !cis) Corrupt(tree, cis, i / options.invalid_every, one);
    adapter.AppendRecord(one, tree, true);
    if (bad && cis) {
      Corrupt(tree, cis, i / options.invalid_every, one);
      if ((i / options.invalid_every) % 6 != 3) {
        one.clear();
        adapter.AppendRecord(one, tree, true);
      }
    }
    buf += one;
    if (buf.size() > (1 << 20)) {
      std::fwrite(buf.data(), 1, buf.size(), out);
      buf.clear();
    }
  }
  buf += adapter.BatchEnd();
  std::fwrite(buf.data(), 1, buf.size(), out);
  std::fflush(out);
}

}  // namespace caregate::synth

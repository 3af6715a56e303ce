// QKLab engine — analyze's mechanism outputs (see analyze_mechanisms.h).
#include "analyze_mechanisms.h"
#include "names.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <ostream>

#include "causal.h"
#include "circuits.h"
#include "esd.h"
#include "fsutil.h"
#include "geometry.h"
#include "run_dir.h"

namespace qk {
namespace {

using json = nlohmann::json;

std::string S(int64_t v) { return std::to_string(v); }
std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& t : v) s += (s.empty() ? "" : " | ") + t;
  return s;
}
json num(double v) { return std::isfinite(v) ? json(v) : json(); }

}  // namespace

void write_mechanisms(const MechanismInputs& in, json& report, std::ostream& out, std::ostream& err) {
  const bool tty = isatty(fileno(stderr));
  auto say = [&](const std::string& what) {
    if (tty) err << "\r" << what << "\033[K" << std::flush;
  };
  const auto& val = *in.val;
  const AccuracyKind acc = accuracy_kind(in.cfg.data.kind);
  auto label = [&](int64_t id) { return token_label(in.tokenizer, id); };

  std::string geo = "variant,seed,layer,head,sym_fraction,skew_fraction,symmetry,directionality,diagonal_mass,uniform_diagonal\n";
  std::string eig = "variant,seed,layer,head,index,re,im\n";
  std::string circ = "variant,seed,layer,head,circuit,direction,sigma,left_tokens,right_tokens\n";
  std::string comp = "variant,seed,kind,layer_from,head_from,layer_to,head_to,score,baseline\n";
  std::string abl = "variant,seed,layer,head,kind,rank,val_loss,delta\n";
  std::string pat = "variant,seed,layer,head,restored,clean_logit_diff,corrupt_logit_diff,pairs\n";
  std::string esd = "variant,seed,step,matrix,layer,head,n,alpha,xmin,ks,tail,lambda_max,mp_sigma2,mp_edge,spikes,soft_rank\n";
  auto esd_row = [&](const EsdRecord& e, int seed) {
    esd += csv_row({e.variant, S(seed), S(e.step), e.matrix, S(e.layer), S(e.head), S(e.n), csv_number(e.alpha),
                csv_number(e.xmin), csv_number(e.ks), S(e.tail), csv_number(e.lambda_max), csv_number(e.mp_sigma2),
                csv_number(e.mp_edge), S(e.spikes), csv_number(e.soft_rank)});
  };
  const auto pairs = in.pairs.empty() ? patch_pairs(val, 16) : in.pairs;
  for (const auto& mm : in.models) {
    auto& m = *mm.model;
    const std::string who = mm.name + " seed " + S(mm.seed);
    say("geometry " + who);
    const auto g = model_geometry(m, mm.name, val);
    for (const auto& r : g.rows) {
      geo += csv_row({mm.name, S(mm.seed), S(r.layer), S(r.head), csv_number(r.sym_fraction), csv_number(r.skew_fraction),
                  csv_number(r.symmetry), csv_number(r.directionality), csv_number(r.diagonal_mass),
                  csv_number(g.uniform_diagonal)});
      for (size_t i = 0; i < r.eig_re.size(); ++i)
        eig += csv_row({mm.name, S(mm.seed), S(r.layer), S(r.head), S(int64_t(i)), csv_number(r.eig_re[i]), csv_number(r.eig_im[i])});
      report["geometry"].push_back({{"variant", mm.name}, {"seed", mm.seed}, {"layer", r.layer}, {"head", r.head},
                                    {"symmetry", r.symmetry}, {"directionality", r.directionality},
                                    {"sym_fraction", r.sym_fraction}, {"diagonal_mass", num(r.diagonal_mass)},
                                    {"eig_re", r.eig_re}, {"eig_im", r.eig_im}});
    }
    say("circuits " + who);
    const auto c = model_circuits(m, mm.name, label, [&](int l, int h) { say("circuits " + who + " layer " + S(l) + " head " + S(h)); });
    for (const auto& r : c.readouts)
      for (size_t i = 0; i < r.directions.size(); ++i) {
        const auto& d = r.directions[i];
        circ += csv_row({mm.name, S(mm.seed), S(r.layer), S(r.head), r.circuit, S(int64_t(i)), csv_number(d.sigma),
                     csv_text(join(d.left)), csv_text(join(d.right))});
        report["circuits"].push_back({{"variant", mm.name}, {"seed", mm.seed}, {"layer", r.layer}, {"head", r.head},
                                      {"circuit", r.circuit}, {"direction", i}, {"sigma", d.sigma},
                                      {"left", d.left}, {"right", d.right}});
      }
    for (const auto& s : c.composition) {
      comp += csv_row({mm.name, S(mm.seed), s.kind, S(s.layer_from), S(s.head_from), S(s.layer_to), S(s.head_to),
                   csv_number(s.score), csv_number(c.baseline)});
      report["composition"].push_back({{"variant", mm.name}, {"seed", mm.seed}, {"kind", s.kind},
                                       {"from", {s.layer_from, s.head_from}}, {"to", {s.layer_to, s.head_to}},
                                       {"score", s.score}});
    }
    say("spectral health " + who);
    for (const auto& e : model_esd(m, mm.name, mm.step)) {
      esd_row(e, mm.seed);
      report["esd"].push_back({{"variant", e.variant}, {"seed", mm.seed}, {"matrix", e.matrix}, {"layer", e.layer},
                               {"head", e.head}, {"alpha", num(e.alpha)}, {"spikes", e.spikes}, {"soft_rank", e.soft_rank}});
    }
    if (!in.ablation || val.empty()) continue;
    AblationOptions o;
    o.accuracy = acc;
    const auto a = model_ablation(m, mm.name, val, pairs, o,
                                  [&](const std::vector<int64_t>& ids) {
                                    std::string s;
                                    for (auto id : ids) s += (in.tokenizer ? "" : (s.empty() ? "" : " ")) + label(id);
                                    return s;
                                  },
                                  [&](int done, int total) { say("ablation " + who + " " + S(done) + "/" + S(total)); });
    for (int l = 0; l < a.layers; ++l)
      for (int h = 0; h < a.heads; ++h) {
        const size_t i = size_t(l * a.heads + h);
        abl += csv_row({mm.name, S(mm.seed), S(l), S(h), "zero", "", csv_number(a.zero_loss[i]), csv_number(a.zero_loss[i] - a.base_loss)});
        abl += csv_row({mm.name, S(mm.seed), S(l), S(h), "mean", "", csv_number(a.mean_loss[i]), csv_number(a.mean_loss[i] - a.base_loss)});
        for (size_t r = 0; r < a.ranks.size(); ++r)
          abl += csv_row({mm.name, S(mm.seed), S(l), S(h), "rank", S(a.ranks[r]), csv_number(a.rank_loss[i][r]),
                      csv_number(a.rank_loss[i][r] - a.base_loss)});
        if (!a.patch_restored.empty())
          pat += csv_row({mm.name, S(mm.seed), S(l), S(h), csv_number(a.patch_restored[i]), csv_number(a.clean_logit_diff),
                      csv_number(a.corrupt_logit_diff), S(a.patch_pairs)});
      }
    report["ablation"].push_back({{"variant", mm.name}, {"seed", mm.seed}, {"base_loss", a.base_loss},
                                  {"zero_loss", a.zero_loss}, {"mean_loss", a.mean_loss}, {"ranks", a.ranks},
                                  {"rank_loss", a.rank_loss}});
    report["patching"].push_back({{"variant", mm.name}, {"seed", mm.seed}, {"pairs", a.patch_pairs},
                                  {"clean", a.patch_clean}, {"corrupt", a.patch_corrupt},
                                  {"clean_logit_diff", a.clean_logit_diff}, {"corrupt_logit_diff", a.corrupt_logit_diff},
                                  {"restored", [&] { json j = json::array(); for (double v : a.patch_restored) j.push_back(num(v)); return j; }()}});
  }
  // The forms over training, from the run's spectra history (σ of every M_h at every evaluation).
  for (const auto& rec : in.history)
    for (const auto& e : forms_esd_history({rec}, in.cfg.model.emb_dim)) esd_row(e, rec.seed);
  if (tty) err << "\r\033[K";
  write_file_atomic(in.dir + "/geometry.csv", geo);
  write_file_atomic(in.dir + "/eigenvalues.csv", eig);
  write_file_atomic(in.dir + "/circuits.csv", circ);
  write_file_atomic(in.dir + "/composition.csv", comp);
  write_file_atomic(in.dir + "/ablation.csv", abl);
  write_file_atomic(in.dir + "/patching.csv", pat);
  write_file_atomic(in.dir + "/esd.csv", esd);
  if (!in.ablation)
    out << "ablation and patching skipped: a model of this size (L·H·d² > 4M) takes minutes to hours; "
           "add --ablation to run them\n";
  out << "mechanisms: geometry.csv eigenvalues.csv circuits.csv composition.csv ablation.csv patching.csv esd.csv ("
      << pairs.size() << " patching pairs)\n";
}

}  // namespace qk

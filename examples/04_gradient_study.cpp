// examples/04_gradient_study.cpp: what a trained EulerFormer's rotation attention learned, and which
// gradients taught it. Every result is written as SVG (look at it) and CSV (analyse it).
//
//   1. Two models trained on the bundled data, the same but for the phase contrastive loss (the default
//      weight lamb = 1e-5, or --lamb, and lamb = 0), saved as checkpoints and loaded back; or your own
//      checkpoint (--checkpoint).
//   2. One batch of validation lists, forward with a Trace, three backward passes (cross-entropy,
//      contrastive, total). The gradients of the loss with respect to delta and b of every layer, and
//      with respect to the rotated phases theta~ (read from the tape), checked against the formulas of
//      docs/model.md section 4: d delta = sum theta dtheta~, d b = sum dtheta~_Q.
//   3. Attention maps of one list, per layer and head.
//   4. The distributions of the rotated phases per layer, with and without the contrastive loss.
//   5. The long-term decay: the attention logit of the batch's (query, key) pairs moved to distance D,
//      for the learned delta and b and for RoPE (delta = 1, b = 0); its derivative checked against
//      -sum_t C_t sin(delta (theta_Q - theta_K) + b + D g_t) (docs/model.md section 7).
//   6. What this shows: a paragraph computed from the results above.
//
// Run from the repository root:
//     ./build/examples/example_gradient_study                 # trains both models (about 25 s on 2 free cores: 49 s of CPU)
//     ./build/examples/example_gradient_study --fast          # tiny models, one epoch (what CI runs)
//     ./build/examples/example_gradient_study --checkpoint run/best.safetensors [--compare other.safetensors]
//     --out DIR (default gradient_study/), --data FILE (default data/synthetic.txt, the checkpoint's data),
//     --min-user/--min-item/--min-rating (the filters the checkpoint was trained with; default: keep all),
//     --lamb X (the contrastive weight of the first trained model; default 1e-5, the library's and the paper's)
//
// How the rotated phases are found: the tape is a flat list of nodes in creation order, each with an op
// name. EulerFormer's attention records, per layer, euler_phase (theta~, [B, N, D/2]) and with_phase
// (the rotated vector, [B, N, D]) for the queries and then for the keys, so the 2l-th and (2l+1)-th
// nodes of each kind belong to layer l. The study checks this reading: the attention logits rebuilt
// from those nodes must equal the ones in the Trace.
#include <euler/plot/charts.hpp>
#include <euler/plot/csv.hpp>
#include <euler/train/trainer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <string>
#include <vector>

using namespace euler;
namespace fs = std::filesystem;

namespace {

constexpr double kPi = std::numbers::pi;

constexpr const char* kUsage =
    "usage: example_gradient_study [--fast] [--lamb X] [--checkpoint FILE [--compare FILE]] [--data FILE]\n"
    "                              [--min-user N] [--min-item N] [--min-rating R] [--out DIR]\n"
    "  What a trained EulerFormer's rotation attention learned, and which gradients taught it: the gradients\n"
    "  with respect to delta, b and the rotated phases per layer (checked against docs/model.md), attention\n"
    "  maps, the phase distributions with and without the contrastive loss, and the long-term decay; each\n"
    "  as SVG and CSV. Run from the repository root.\n"
    "  (none)              train two small models on data/synthetic.txt, with and without the contrastive loss\n"
    "  --fast              tiny models, one epoch (what the tests run)\n"
    "  --lamb X            contrastive weight of the first model (default 1e-5; the second has 0)\n"
    "  --checkpoint FILE   study this checkpoint instead; --compare FILE: a second one beside it\n"
    "  --data FILE         the data of the study batch (default data/synthetic.txt)\n"
    "  --min-user N, --min-item N, --min-rating R\n"
    "                      filter the data as the checkpoint's training did (euler train's flags; default: keep all)\n"
    "  --out DIR           where the files go (default gradient_study/)\n";

struct Options {
  bool fast = false;
  double lamb = 1e-5;  // the library's default contrastive weight (the authors')
  DatasetOptions filters;
  std::string data = "data/synthetic.txt", out = "gradient_study", checkpoint, compare;
};

// ---- output --------------------------------------------------------------------------------------

std::vector<std::string> g_written;
void save(const Options& o, const std::string& name, const std::string& text) {
  std::string path = (fs::path(o.out) / name).string();
  write_file_atomically(path, text);
  g_written.push_back(path);
}

bool g_ok = true;
std::vector<std::string> g_findings;  // the sentences of section 6, "what this shows"
void finding(const char* format, auto... args) {
  char line[1024];
  std::snprintf(line, sizeof line, format, args...);
  g_findings.push_back(line);
}
void check(const char* what, double error, double tolerance) {
  std::printf("  check: %-66s %.2e %s\n", what, error, error <= tolerance ? "ok" : "FAILED");
  g_ok = g_ok && error <= tolerance;
}

// ---- the models ----------------------------------------------------------------------------------

// Train EulerFormer on the data with the given contrastive weight; returns the best checkpoint's path.
std::string train(const Options& o, const Dataset& data, double lamb, const std::string& name) {
  EulerFormerConfig c;
  c.max_len = o.fast ? 10 : 20;
  c.hidden_size = o.fast ? 16 : 64;
  c.inner_size = 4 * c.hidden_size;
  c.hidden_dropout_prob = c.attn_dropout_prob = 0.2;
  c.objective = Objective::all;
  c.lamb = lamb;
  TrainOptions t;
  t.epochs = o.fast ? 1 : 20;
  t.patience = 5;
  t.batch_size = o.fast ? 256 : 128;
  t.lr = 2e-3;
  t.out_dir = (fs::path(o.out) / name).string();
  t.verbose = t.progress = false;
  Trainer<float> trainer(c, t, data);
  nlohmann::json result = trainer.run();
  std::printf("  trained %-22s lamb %-6g best epoch %2d, test NDCG@10 %.4f\n", name.c_str(), lamb, result["best_epoch"].get<int>(),
              result["test_ndcg@10"].get<double>());
  return t.out_dir + "/best.safetensors";
}

// A batch of validation lists for the model's objective: ids [B, N] and targets ([B] or [B, N]).
struct StudyBatch {
  Tensor<int32_t> ids, targets;
  Batch batch() const { return {ids.view(), targets.view()}; }
};
StudyBatch make_batch(const EulerFormerConfig& c, const Split& split, int64_t B) {
  int64_t N = c.max_len;
  B = std::min<int64_t>(B, int64_t(split.evaluated_users.size()));
  bool last = c.objective == Objective::last;
  StudyBatch s{Tensor<int32_t>::zeros({B, N}), last ? Tensor<int32_t>::zeros({B}) : Tensor<int32_t>::zeros({B, N})};
  for (int64_t b = 0; b < B; ++b) {
    int32_t u = split.evaluated_users[size_t(b)];
    std::vector<int32_t> window(split.validation_history(u).begin(), split.validation_history(u).end());
    window.push_back(split.validation_target(u));  // the history and the item that came next
    size_t keep = std::min(window.size(), size_t(N) + 1);
    std::vector<int32_t> w(window.end() - std::ptrdiff_t(keep), window.end());
    for (size_t j = 0; j + 1 < w.size(); ++j) {
      s.ids[b * N + int64_t(j)] = w[j];
      if (!last) s.targets[b * N + int64_t(j)] = w[j + 1];
    }
    if (last) s.targets[b] = w.back();
  }
  return s;
}

// ---- what one model shows ------------------------------------------------------------------------

struct LayerStudy {
  double delta = 1, bias = 0;                      // the learned values (scalar, or the channel mean)
  double d_delta_ce = 0, d_delta_con = 0, d_bias_ce = 0, d_bias_con = 0;
  std::vector<double> dphase_q, dphase_k;          // [N, D/2] dL/dtheta~ summed over the batch's lists
  std::vector<double> lambda_q, lambda_k, phase_q, phase_k;  // [B, N, D/2] |q~|, |k~|, theta~ (unwrapped)
  std::vector<double> rotated_q, rotated_k;        // arg of q~ and k~ at valid positions (the Trace's phases)
  std::vector<double> attention;                   // [H, N, N] of the first list
};
struct ModelStudy {
  std::vector<LayerStudy> layers;
  std::vector<double> dpsi;  // [N, D/2] dL/dpsi, the input rotary table
};

double sum_of(TensorView<const float> v) {
  double s = 0;
  for (int64_t i = 0; i < v.numel(); ++i) s += v[i];
  return s;
}

ModelStudy study(EulerFormer<float>& model, const StudyBatch& sb) {
  const EulerFormerConfig& c = model.config();
  const int64_t B = sb.ids.size(0), N = sb.ids.size(1), P = c.hidden_size / 2, H = c.n_heads, L = c.n_layers;
  Parameters<float>& params = model.parameters();
  Tape<float> tape;
  Rng unused(0);
  Context<float> ctx{tape, params, /*dropout_on=*/false, unused};
  Trace<float> trace;
  Losses<float> losses = model.loss(ctx, sb.batch(), &trace);
  std::printf("  loss %.4f = cross-entropy %.4f + contrastive %.3g\n", losses.total.value()[0], losses.ce.value()[0],
              losses.contrastive.value()[0]);

  // The Euler transform's nodes, in creation order: [query of layer 0, key of layer 0, query of layer 1, ...].
  std::vector<Var<float>> phases, rotated;
  for (int32_t id = 0; id < int32_t(tape.size()); ++id) {
    if (std::strcmp(tape.node(id).op, "euler_phase") == 0) phases.push_back(Var<float>{&tape, id});
    if (std::strcmp(tape.node(id).op, "with_phase") == 0) rotated.push_back(Var<float>{&tape, id});
  }
  if (phases.size() != size_t(2 * L) || rotated.size() != size_t(2 * L))
    throw std::runtime_error("expected 2 euler_phase and 2 with_phase nodes per layer on the tape, found " +
                             std::to_string(phases.size()) + " and " + std::to_string(rotated.size()));

  auto param_or = [&](const std::string& name, double fallback) {
    return params.contains(name) ? sum_of(params.value(name)) / double(params.value(name).numel()) : fallback;
  };
  auto grad_of = [&](const std::string& name) { return params.contains(name) ? sum_of(params.grad(name)) : 0.0; };  // summed over channels
  std::vector<LayerStudy> layers(static_cast<size_t>(L));
  auto prefix = [](int64_t l) { return "trm_encoder.layer." + std::to_string(l) + ".multi_head_attention.euler."; };

  // Three passes: cross-entropy alone, contrastive alone, then the total (whose gradients stay).
  for (int pass = 0; pass < 3; ++pass) {
    params.zero_grad();
    Var<float> loss = pass == 0 ? losses.ce : pass == 1 ? losses.contrastive : losses.total;
    if (pass == 1 && c.lamb == 0) continue;
    tape.backward(loss);
    for (int64_t l = 0; l < L && pass < 2; ++l) {
      (pass == 0 ? layers[size_t(l)].d_delta_ce : layers[size_t(l)].d_delta_con) = grad_of(prefix(l) + "delta");
      (pass == 0 ? layers[size_t(l)].d_bias_ce : layers[size_t(l)].d_bias_con) = grad_of(prefix(l) + "b");
    }
  }

  // Read the phases, magnitudes and phase gradients of the total.
  for (int64_t l = 0; l < L; ++l) {
    LayerStudy& s = layers[size_t(l)];
    s.delta = param_or(prefix(l) + "delta", 1.0);
    s.bias = param_or(prefix(l) + "b", 0.0);
    s.dphase_q.assign(size_t(N * P), 0.0);
    s.dphase_k.assign(size_t(N * P), 0.0);
    TensorView<float> tq = phases[size_t(2 * l)].value(), tk = phases[size_t(2 * l + 1)].value();
    TensorView<float> gq = tape.grad(phases[size_t(2 * l)]), gk = tape.grad(phases[size_t(2 * l + 1)]);
    TensorView<float> rq = rotated[size_t(2 * l)].value(), rk = rotated[size_t(2 * l + 1)].value();
    for (int64_t i = 0; i < B * N * P; ++i) {
      s.dphase_q[size_t(i % (N * P))] += double(gq[i]);
      s.dphase_k[size_t(i % (N * P))] += double(gk[i]);
      s.phase_q.push_back(tq[i]);
      s.phase_k.push_back(tk[i]);
      s.lambda_q.push_back(std::hypot(double(rq[2 * i]), double(rq[2 * i + 1])));
      s.lambda_k.push_back(std::hypot(double(rk[2 * i]), double(rk[2 * i + 1])));
      if (sb.ids[i / P] != 0) {
        s.rotated_q.push_back(trace.query_phase[size_t(l)].value()[i]);
        s.rotated_k.push_back(trace.key_phase[size_t(l)].value()[i]);
      }
    }
    TensorView<float> a = trace.attention[size_t(l)].value();  // [B, H, N, N]: the first list
    s.attention.assign(a.data, a.data + H * N * N);

    // Check that these are the right nodes: rebuild the attention logits of layer l from them,
    // logit[b, h, m, n] = sum_{t in head h} lambda_Q lambda_K cos(theta~_Q - theta~_K) / sqrt(d_h).
    TensorView<float> logits = trace.attention_logits[size_t(l)].value();
    double worst = 0, scale = 1 / std::sqrt(double(c.head_size())), biggest = 1e-12;
    int64_t per_head = P / H;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t m = 0; m < N; ++m)
          for (int64_t n = 0; n < N; ++n) {
            double sum = 0;
            for (int64_t t = h * per_head; t < (h + 1) * per_head; ++t) {
              size_t qi = size_t((b * N + m) * P + t), ki = size_t((b * N + n) * P + t);
              sum += s.lambda_q[qi] * s.lambda_k[ki] * std::cos(s.phase_q[qi] - s.phase_k[ki]);
            }
            double traced = logits[((b * H + h) * N + m) * N + n];
            worst = std::max(worst, std::abs(sum * scale - traced));
            biggest = std::max(biggest, std::abs(traced));
          }
    char what[96];
    std::snprintf(what, sizeof what, "layer %lld: logits rebuilt from the tape's theta~ = Trace (relative)", (long long)l);
    check(what, worst / biggest, 1e-4);

    // The chain rule of the adaptation function (docs/model.md section 4), on the total's gradients:
    //   theta~_Q = delta theta_Q + b + alpha, theta~_K = delta theta_K + alpha
    //   => dL/db = sum dtheta~_Q,   dL/ddelta = sum theta_Q dtheta~_Q + sum theta_K dtheta~_K
    // with theta recovered as (theta~ - b - alpha) / delta (scalar delta and b, fixed frequencies).
    bool scalar = c.delta_shape == DeltaShape::scalar && c.adaptation && !c.learnable_freq;
    if (scalar && std::abs(s.delta) > 1e-3) {
      // Errors relative to the size of the summed terms (the sums themselves may cancel).
      double db = 0, dd = 0, db_scale = 1e-30, dd_scale = 1e-30;
      for (int64_t i = 0; i < B * N * P; ++i) {
        int64_t j = (i / P) % N, t = i % P;
        double alpha = double(j) * std::pow(10000.0, -2.0 * double(t) / c.hidden_size);
        double theta_q = (tq[i] - s.bias - alpha) / s.delta, theta_k = (tk[i] - alpha) / s.delta;
        db += gq[i];
        dd += theta_q * gq[i] + theta_k * gk[i];
        db_scale += std::abs(gq[i]);
        dd_scale += std::abs(theta_q * gq[i]) + std::abs(theta_k * gk[i]);
      }
      std::snprintf(what, sizeof what, "layer %lld: dL/ddelta = sum theta dtheta~ (error / sum of |terms|)", (long long)l);
      check(what, std::abs(dd - grad_of(prefix(l) + "delta")) / dd_scale, 1e-4);
      if (c.euler_bias) {
        std::snprintf(what, sizeof what, "layer %lld: dL/db = sum dtheta~_Q (error / sum of |terms|)", (long long)l);
        check(what, std::abs(db - grad_of(prefix(l) + "b")) / db_scale, 1e-4);
      }
    }
  }
  ModelStudy out{std::move(layers), {}};
  if (params.contains("rotary_embedding.weight")) {
    TensorView<float> g = params.grad("rotary_embedding.weight");  // [max_len, D/2]
    out.dpsi.assign(g.data, g.data + N * P);
  }
  return out;
}

// ---- the long-term decay -------------------------------------------------------------------------

// Mean over the batch's (query m, key n <= m) pairs at valid positions of the head-averaged logit the
// pair would have at distance D: (1/H) sum_t lambda_Q lambda_K cos(s_t + D g_t) / sqrt(d_h), where
// s_t = delta (theta_Q - theta_K) + b = theta~_Q[m] - theta~_K[n] - (m - n) g_t is the semantic part.
// As RoPE (delta = 1, b = 0) the semantic part is theta_Q - theta_K = (s_t - b) / delta.
// Returns the curve and its derivative d/dD = -(1/H) sum_t lambda_Q lambda_K g_t sin(s_t + D g_t) / sqrt(d_h).
// cos(s + D g) = cos s cos Dg - sin s sin Dg, so each channel needs only A_t = sum w cos s_t and
// S_t = sum w sin s_t over the pairs: one pass over the pairs, then a cheap sum per distance (a batch of
// 128 lists of 200 items has 2.6 million pairs; summing them again at each of 600 distances took minutes).
struct DecaySums {
  std::vector<double> g, A, S;  // [D/2] the frequencies, and the per-pair means of w cos s_t and w sin s_t
};
struct Decay {
  std::vector<double> value, slope;
};
DecaySums decay_sums(const EulerFormerConfig& c, const LayerStudy& s, const StudyBatch& sb, bool as_rope) {
  const int64_t B = sb.ids.size(0), N = sb.ids.size(1), P = c.hidden_size / 2;
  std::vector<double> g(static_cast<size_t>(P)), A(static_cast<size_t>(P), 0.0), S(static_cast<size_t>(P), 0.0);
  for (int64_t t = 0; t < P; ++t) g[size_t(t)] = std::pow(10000.0, -2.0 * double(t) / c.hidden_size);
  double scale = 1 / (std::sqrt(double(c.head_size())) * double(c.n_heads));
  int64_t pairs = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t m = 0; m < N; ++m)
      for (int64_t n = 0; n <= m; ++n) {
        if (sb.ids[b * N + m] == 0 || sb.ids[b * N + n] == 0) continue;
        ++pairs;
        for (int64_t t = 0; t < P; ++t) {
          size_t qi = size_t((b * N + m) * P + t), ki = size_t((b * N + n) * P + t);
          double semantic = s.phase_q[qi] - s.phase_k[ki] - double(m - n) * g[size_t(t)];
          if (as_rope) semantic = (semantic - s.bias) / s.delta;
          double weight = s.lambda_q[qi] * s.lambda_k[ki] * scale;
          A[size_t(t)] += weight * std::cos(semantic);
          S[size_t(t)] += weight * std::sin(semantic);
        }
      }
  const double per_pair = 1 / double(std::max<int64_t>(1, pairs));
  for (int64_t t = 0; t < P; ++t) A[size_t(t)] *= per_pair, S[size_t(t)] *= per_pair;
  return {g, A, S};
}
Decay decay(const DecaySums& sums, const std::vector<double>& distances) {
  const std::vector<double>& g = sums.g;
  Decay d{std::vector<double>(distances.size(), 0.0), std::vector<double>(distances.size(), 0.0)};
  for (size_t k = 0; k < distances.size(); ++k)
    for (size_t t = 0; t < g.size(); ++t) {
      double turn = distances[k] * g[t], a = sums.A[t], sn = sums.S[t];
      d.value[k] += a * std::cos(turn) - sn * std::sin(turn);            // sum w cos(s + D g)
      d.slope[k] -= g[t] * (a * std::sin(turn) + sn * std::cos(turn));  // sum -w g sin(s + D g)
    }
  return d;
}

// Circular concentration of phases: |mean of e^{i theta}|, 0 for uniform phases, 1 when all are equal;
// and where they point on average, arg(mean of e^{i theta}).
double resultant_length(const std::vector<double>& phases) {
  double c = 0, s = 0;
  for (double p : phases) c += std::cos(p), s += std::sin(p);
  return phases.empty() ? 0 : std::hypot(c, s) / double(phases.size());
}
double mean_direction(const std::vector<double>& phases) {
  double c = 0, s = 0;
  for (double p : phases) c += std::cos(p), s += std::sin(p);
  return std::atan2(s, c);
}

}  // namespace

int main(int argc, char** argv) try {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    auto number = [&]() {
      std::string text = value();
      char* end = nullptr;
      double x = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(x)) throw std::invalid_argument(arg + " needs a number, not '" + text + "'");
      return x;
    };
    if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (arg == "--fast") o.fast = true;
    else if (arg == "--data") o.data = value();
    else if (arg == "--out") o.out = value();
    else if (arg == "--checkpoint") o.checkpoint = value();
    else if (arg == "--compare") o.compare = value();
    else if (arg == "--lamb") o.lamb = number();
    else if (arg == "--min-user") o.filters.min_user_interactions = int64_t(number());
    else if (arg == "--min-item") o.filters.min_item_interactions = int64_t(number());
    else if (arg == "--min-rating") o.filters.min_rating = number();
    else throw std::invalid_argument("unknown argument " + arg + " (example_gradient_study --help lists them)");
  }
  fs::create_directories(o.out);
  Dataset data = load_dataset(o.data, o.filters);
  Split split = leave_one_out(data);

  // ---- 1. the models ---------------------------------------------------------------------------
  std::printf("1. models\n");
  std::string main_file = o.checkpoint, compare_file = o.compare;
  if (main_file.empty()) {
    main_file = train(o, data, o.lamb, "with_contrastive");
    compare_file = train(o, data, 0.0, "without_contrastive");
  }
  std::vector<std::pair<std::string, EulerFormer<float>>> models;
  char lamb_name[64];
  std::snprintf(lamb_name, sizeof lamb_name, "lamb %g", o.lamb);
  models.emplace_back(lamb_name, load_model<float>(main_file));
  if (!compare_file.empty()) models.emplace_back("lamb 0 (no contrastive)", load_model<float>(compare_file));
  auto short_name = [](const std::string& path) {  // run/seed-1/best.safetensors -> seed-1/best.safetensors
    fs::path p(path);
    return p.has_parent_path() && p.parent_path().has_filename() ? (p.parent_path().filename() / p.filename()).string()
                                                                  : p.filename().string();
  };
  if (!o.checkpoint.empty()) models[0].first = short_name(o.checkpoint);
  if (!o.compare.empty()) models[1].first = short_name(o.compare);
  const EulerFormerConfig& c = models[0].second.config();
  for (auto& [name, m] : models) {
    const EulerFormerConfig& mc = m.config();
    if (mc.pos != PosScheme::euler || !mc.differential_rotation || mc.backbone != Backbone::sasrec)
      throw std::invalid_argument(name + ": the study needs an EulerFormer checkpoint on SASRec (pos euler, differential rotation)");
    if (mc.n_items != data.table_rows() || mc.hidden_size != c.hidden_size || mc.n_layers != c.n_layers || mc.max_len != c.max_len)
      throw std::invalid_argument(name + ": does not match " + o.data + " or the first checkpoint (items, hidden size, layers, list length)");
    std::printf("  %-24s hidden %d, %d layers, %d heads, lamb %g\n", name.c_str(), mc.hidden_size, mc.n_layers, mc.n_heads, mc.lamb);
  }
  const int64_t N = c.max_len, P = c.hidden_size / 2, H = c.n_heads;
  StudyBatch sb = make_batch(c, split, o.fast ? 32 : 128);

  // ---- 2. gradients ----------------------------------------------------------------------------
  std::vector<ModelStudy> studies;
  for (auto& [name, m] : models) {
    std::printf("\n2. gradients of %s (a batch of %lld validation lists, dropout off)\n", name.c_str(), (long long)sb.ids.size(0));
    studies.push_back(study(m, sb));
  }
  plot::Csv grads({"model", "layer", "delta", "b", "dL/ddelta (ce)", "dL/ddelta (con)", "dL/db (ce)", "dL/db (con)",
                   "mean |dL/dtheta~_Q|", "mean |dL/dtheta~_K|"});
  std::printf("\n   %-24s %5s %8s %8s %12s %12s %12s %12s %12s %12s\n", "model", "layer", "delta", "b", "ddelta ce", "ddelta con",
              "db ce", "db con", "|dtheta~_Q|", "|dtheta~_K|");
  plot::LinePlot channels;
  channels.title = "gradient of the loss with respect to the rotated phases, by channel";
  channels.x_label = "complex channel t (frequency g_t = 10000^(-2t/d) falls to the right)";
  channels.y_label = "mean_j |sum over lists of dL/dtheta~|";
  channels.integer_x = true;
  channels.log_y = true;  // the contrastive term's gradients can be orders of magnitude larger
  for (size_t k = 0; k < models.size(); ++k)
    for (size_t l = 0; l < studies[k].layers.size(); ++l) {
      const LayerStudy& s = studies[k].layers[l];
      double aq = 0, ak = 0;
      for (size_t i = 0; i < s.dphase_q.size(); ++i) aq += std::abs(s.dphase_q[i]), ak += std::abs(s.dphase_k[i]);
      aq /= double(s.dphase_q.size()), ak /= double(s.dphase_k.size());
      std::printf("   %-24s %5zu %8.4f %8.4f %12.4e %12.4e %12.4e %12.4e %12.4e %12.4e\n", models[k].first.c_str(), l, s.delta,
                  s.bias, s.d_delta_ce, s.d_delta_con, s.d_bias_ce, s.d_bias_con, aq, ak);
      grads.row({models[k].first, int(l), s.delta, s.bias, s.d_delta_ce, s.d_delta_con, s.d_bias_ce, s.d_bias_con, aq, ak});
      finding("%s, layer %zu: delta %.3f, b %+.3f rad (RoPE: 1 and 0): a semantic phase difference of 1 rad counts as %.3f rad, "
              "and every query is turned by %+.3f rad, before the position's angle is added%s",
              models[k].first.c_str(), l, s.delta, s.bias, s.delta, s.bias,
              std::abs(s.delta - 1) < 0.1 && std::abs(s.bias) < 0.1 ? " (within 0.1 of RoPE in both)" : "");
      plot::Series series{models[k].first + ", layer " + std::to_string(l) + ", queries", {}, {}};
      for (int64_t t = 0; t < P; ++t) {
        double sum = 0;
        for (int64_t j = 0; j < N; ++j) sum += std::abs(s.dphase_q[size_t(j * P + t)]);
        series.x.push_back(double(t));
        series.y.push_back(sum / double(N));
      }
      channels.series.push_back(series);
      if (k > 0) continue;
      for (const char* side : {"query", "key"}) {  // dL/dtheta~ over (position, channel), the first model
        plot::Heatmap h;
        h.title = std::string("dL/dtheta~ of the ") + side + " phases, layer " + std::to_string(l) + " (summed over lists)";
        h.x_label = "complex channel t";
        h.y_label = "position j in the list";
        h.value_label = "dL/dtheta~";
        h.rows = N;
        h.cols = P;
        h.values = std::string(side) == "query" ? s.dphase_q : s.dphase_k;
        h.diverging = true;
        h.robust = true;  // a few large cells would wash out the rest
        h.caption = "colours span the 98th percentile of |dL/dtheta~|; larger cells take the end colours";
        plot::Csv csv({"position", "channel", "dL/dtheta~"});
        for (int64_t j = 0; j < N; ++j)
          for (int64_t t = 0; t < P; ++t) csv.row({int(j), int(t), h.values[size_t(j * P + t)]});
        std::string stem = "grad_phase_l" + std::to_string(l) + "_" + side;
        save(o, stem + ".svg", h.svg());
        save(o, stem + ".csv", csv.str());
      }
    }
  save(o, "param_grads.csv", grads.str());
  save(o, "grad_phase_channels.svg", channels.svg());
  if (!studies[0].dpsi.empty()) {
    plot::Heatmap h;
    h.title = "dL/dpsi: gradient of the input rotary table";
    h.x_label = "complex channel t";
    h.y_label = "position j";
    h.value_label = "dL/dpsi";
    h.rows = N;
    h.cols = P;
    h.values = studies[0].dpsi;
    h.diverging = true;
    h.robust = true;
    h.caption = "colours span the 98th percentile of |dL/dpsi|; larger cells take the end colours";
    save(o, "grad_psi.svg", h.svg());
    plot::Csv csv({"position", "channel", "dL/dpsi"});
    for (int64_t j = 0; j < N; ++j)
      for (int64_t t = 0; t < P; ++t) csv.row({int(j), int(t), h.values[size_t(j * P + t)]});
    save(o, "grad_psi.csv", csv.str());
  }

  // ---- 3. attention maps of the first list -----------------------------------------------------
  const int64_t V = EulerFormer<float>::valid_length(sb.ids.data(), N);  // the first list's real items
  std::printf("\n3. attention maps of the first list (%lld items): where each query position puts its weight\n", (long long)V);
  for (size_t l = 0; l < studies[0].layers.size(); ++l)
    for (int64_t h = 0; h < H; ++h) {
      plot::Heatmap map;
      map.title = "attention, layer " + std::to_string(l) + ", head " + std::to_string(h) + " (row m: what query m reads)";
      map.x_label = "key position n (0 = the oldest item; n > m is hidden by the causal mask)";
      map.y_label = "query position m";
      map.value_label = "attention weight";
      map.mark_diagonal = true;
      map.rows = map.cols = N;
      const std::vector<double>& a = studies[0].layers[l].attention;
      map.values.assign(a.begin() + h * N * N, a.begin() + (h + 1) * N * N);
      // Where the weight goes, averaged over the real query positions: the item itself, the one before, older ones.
      double self = 0, previous = 0, older = 0;
      for (int64_t m = 0; m < V; ++m)
        for (int64_t n = 0; n <= m; ++n) (n == m ? self : n + 1 == m ? previous : older) += map.values[size_t(m * N + n)];
      double rows = double(std::max<int64_t>(1, V));
      char line[200];
      std::snprintf(line, sizeof line, "%.0f%% of the weight on the item itself, %.0f%% on the previous one, %.0f%% on older (mean over queries)",
                    100 * self / rows, 100 * previous / rows, 100 * older / rows);
      map.caption = line;
      std::printf("   layer %zu, head %lld: %s\n", l, (long long)h, line);
      const char* most = self >= previous && self >= older ? "the item itself" : previous >= older ? "the previous item" : "older items";
      finding("attention, layer %zu head %lld of the first list: most weight on %s (%.0f%% self, %.0f%% previous, %.0f%% older)", l,
              (long long)h, most, 100 * self / rows, 100 * previous / rows, 100 * older / rows);
      plot::Csv csv({"query", "key", "attention"});
      for (int64_t m = 0; m < N; ++m)
        for (int64_t n = 0; n < N; ++n) csv.row({int(m), int(n), map.values[size_t(m * N + n)]});
      std::string stem = "attention_l" + std::to_string(l) + "_h" + std::to_string(h);
      save(o, stem + ".svg", map.svg());
      save(o, stem + ".csv", csv.str());
    }

  // ---- 4. phase distributions ------------------------------------------------------------------
  std::printf("\n4. rotated phases arg(q~), arg(k~) at valid positions: concentration |mean e^{i theta}| (0 uniform, 1 equal)\n");
  for (size_t l = 0; l < studies[0].layers.size(); ++l) {
    for (size_t k = 0; k < models.size(); ++k) {
      const LayerStudy& s = studies[k].layers[l];
      std::printf("   layer %zu, %-24s queries %.4f (mean direction %+.2f rad)  keys %.4f (%+.2f rad)\n", l, models[k].first.c_str(),
                  resultant_length(s.rotated_q), mean_direction(s.rotated_q), resultant_length(s.rotated_k), mean_direction(s.rotated_k));
    }
    if (models.size() == 2 && models[0].second.config().lamb != models[1].second.config().lamb) {
      double with_q = resultant_length(studies[0].layers[l].rotated_q), without_q = resultant_length(studies[1].layers[l].rotated_q);
      double with_k = resultant_length(studies[0].layers[l].rotated_k), without_k = resultant_length(studies[1].layers[l].rotated_k);
      finding("phases, layer %zu: concentration of the queries %.2f (%s) against %.2f (%s), of the keys %.2f against %.2f%s", l, with_q,
              models[0].first.c_str(), without_q, models[1].first.c_str(), with_k, without_k,
              with_q + with_k > 1.5 * (without_q + without_k) ? ": the first model's phases are drawn together"
              : without_q + without_k > 1.5 * (with_q + with_k) ? ": the first model's phases are spread apart"
                                                                : ": about the same spread");
    }
    for (const char* side : {"query", "key"}) {  // one picture each, the models overlaid
      plot::Histogram hist;
      hist.title = std::string("rotated ") + side + " phases, layer " + std::to_string(l);
      hist.x_label = std::string(side) == "query" ? "arg(q~) (radians)" : "arg(k~) (radians)";
      hist.range = {{-kPi, kPi}};
      hist.bins = 36;
      hist.normalize = true;
      std::vector<std::string> columns = {"bin_lo", "bin_hi"};
      for (size_t k = 0; k < models.size(); ++k) {
        const LayerStudy& s = studies[k].layers[l];
        hist.series.push_back({models[k].first, std::string(side) == "query" ? s.rotated_q : s.rotated_k});
        columns.push_back(models[k].first);
      }
      plot::Bins bins = hist.bin_counts();
      plot::Csv csv(columns);
      for (int i = 0; i < bins.count; ++i) {
        std::vector<plot::CsvCell> row = {bins.edge(i), bins.edge(i + 1)};
        for (const std::vector<double>& h : bins.height) row.emplace_back(h[size_t(i)]);
        csv.row(row);
      }
      std::string stem = "phases_l" + std::to_string(l) + "_" + side;
      save(o, stem + ".svg", hist.svg());
      save(o, stem + ".csv", csv.str());
    }
  }

  // ---- 5. long-term decay ----------------------------------------------------------------------
  std::printf("\n5. long-term decay: mean logit of the batch's pairs moved to distance D = 0 .. %lld\n", (long long)(3 * N));
  std::vector<double> distances;
  for (int64_t d = 0; d <= 3 * N; ++d) distances.push_back(double(d));
  plot::LinePlot curve;
  curve.title = "does attention fade with distance? mean logit at distance D (" + models[0].first + ")";
  curve.x_label = "distance D = m - n between query and key";
  curve.y_label = "mean logit of the batch's (query, key) pairs";
  curve.integer_x = true;
  curve.markers.push_back({double(N - 1), "longest distance in training"});
  std::vector<std::string> columns = {"distance"};
  std::vector<std::vector<double>> table;
  for (size_t l = 0; l < studies[0].layers.size(); ++l) {
    const LayerStudy& s = studies[0].layers[l];
    std::vector<double> learned;  // the learned curve, to set RoPE's beside it
    for (bool as_rope : {false, true}) {
      DecaySums sums = decay_sums(c, s, sb, as_rope);
      Decay d = decay(sums, distances);
      char name[96];
      std::snprintf(name, sizeof name, "layer %zu, %s", l, as_rope ? "as RoPE (delta 1, b 0)" : "learned delta, b");
      curve.series.push_back({name, distances, d.value});
      columns.push_back(name);
      table.push_back(d.value);
      // The derivative formula against central differences of the curve itself.
      double worst = 0, biggest = 1e-12;
      for (size_t k = 0; k < distances.size(); ++k) {
        Decay around = decay(sums, {distances[k] - 1e-4, distances[k] + 1e-4});
        double numeric = (around.value[1] - around.value[0]) / 2e-4;
        worst = std::max(worst, std::abs(numeric - d.slope[k]));
        biggest = std::max(biggest, std::abs(d.slope[k]));
        if (o.fast && k >= 8) break;  // a few distances are enough to check the formula
      }
      // Within the distances training saw (0 .. N-1): where the curve is highest and lowest.
      auto first = d.value.begin(), last = d.value.begin() + N;
      size_t top = size_t(std::max_element(first, last) - first), bottom = size_t(std::min_element(first, last) - first);
      std::printf("   %-40s D = 0: %+.3f, highest %+.3f at D = %zu, lowest %+.3f at D = %zu, D = %lld: %+.3f\n", name, d.value[0],
                  d.value[top], top, d.value[bottom], bottom, (long long)(N - 1), d.value[size_t(N - 1)]);
      if (!as_rope) learned = d.value;
      else {
        double gap = 0;  // the largest difference between the learned curve and RoPE's within 0 .. N-1
        for (int64_t k = 0; k < N; ++k) gap = std::max(gap, std::abs(learned[size_t(k)] - d.value[size_t(k)]));
        size_t learned_top = size_t(std::max_element(learned.begin(), learned.begin() + N) - learned.begin());
        size_t learned_bottom = size_t(std::min_element(learned.begin(), learned.begin() + N) - learned.begin());
        // Decay, in one number per curve: the mean logit at the nearest distances (0, 1, 2) against the far half.
        auto near_far = [N](const std::vector<double>& v) {
          double near = (v[0] + v[1] + v[2]) / 3, far = 0;
          for (int64_t k = N / 2; k < N; ++k) far += v[size_t(k)];
          return std::pair{near, far / double(N - N / 2)};
        };
        auto [learned_near, learned_far] = near_far(learned);
        auto [rope_near, rope_far] = near_far(d.value);
        finding("decay, layer %zu: the mean logit is %+.2f at D = 0-2 and %+.2f over D = %lld-%lld with the learned delta and b (%s), "
                "%+.2f and %+.2f as RoPE with the same content (%s); highest %+.2f at D = %zu and lowest %+.2f at D = %zu (learned), "
                "%+.2f at D = %zu and %+.2f at D = %zu (RoPE); the curves differ by at most %.2f (%.0f%% of RoPE's range): %s",
                l, learned_near, learned_far, (long long)(N / 2), (long long)(N - 1),
                learned_far < learned_near ? "attention decays" : "no decay", rope_near, rope_far,
                rope_far < rope_near ? "decays" : "no decay", learned[learned_top], learned_top, learned[learned_bottom],
                learned_bottom, d.value[top], top, d.value[bottom], bottom, gap,
                100 * gap / std::max(1e-12, d.value[top] - d.value[bottom]),
                gap < 0.25 * std::max(1e-12, d.value[top] - d.value[bottom])
                    ? "the decay (or its absence) comes from the content, W_Q and W_K, not from delta and b"
                    : "delta and b change how attention depends on distance");
      }
      std::snprintf(name, sizeof name, "layer %zu, %s: d logit/dD formula (relative)", l, as_rope ? "RoPE" : "learned");
      check(name, worst / biggest, 1e-5);
    }
  }
  // The textbook curve: unit magnitudes and equal semantic phases, (2/d) sum_t cos(D g_t).
  plot::Series reference{"unit magnitudes, equal phases: (2/d) sum_t cos(D g_t)", distances, {}};
  for (double D : distances) {
    double sum = 0;
    for (int64_t t = 0; t < P; ++t) sum += std::cos(D * std::pow(10000.0, -2.0 * double(t) / c.hidden_size));
    reference.y.push_back(sum / double(P));
  }
  columns.push_back(reference.name);
  table.push_back(reference.y);
  save(o, "decay.svg", curve.svg());
  plot::LinePlot ref;
  ref.title = "RoPE's decay for equal phases, d = " + std::to_string(c.hidden_size);
  ref.x_label = "distance D";
  ref.y_label = "(2/d) sum_t cos(D g_t)";
  ref.integer_x = true;
  ref.series.push_back({"", reference.x, reference.y});  // one curve: the axis label says what it is
  save(o, "decay_reference.svg", ref.svg());
  plot::Csv csv(columns);
  for (size_t k = 0; k < distances.size(); ++k) {
    std::vector<plot::CsvCell> row = {distances[k]};
    for (const std::vector<double>& column : table) row.emplace_back(column[k]);
    csv.row(row);
  }
  save(o, "decay.csv", csv.str());

  // ---- 6. what this shows ----------------------------------------------------------------------
  std::printf("\n6. what this shows (computed from the results above)\n");
  for (const std::string& line : g_findings) std::printf("   - %s\n", line.c_str());
  std::printf("   - the gradients of delta and b and the decay's slope match their formulas (docs/model.md sections 4 and 7): %s\n",
              g_ok ? "every check passed" : "A CHECK FAILED");

  std::printf("\nwrote %zu files to %s/\n%s\n", g_written.size(), o.out.c_str(), g_ok ? "all checks passed" : "SOME CHECK FAILED");
  return g_ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "example_gradient_study: %s\n", e.what());
  return 1;
}

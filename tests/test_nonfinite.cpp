// NaN and inf: check/finite.hpp finds the op that produced the first one (forward values, then
// gradients); the trainer stops at the step where one appears, naming the op, with the last
// checkpoint intact, or skips such steps when asked (on_nonfinite = skip). Overflows are forced by
// crafted weights and by huge learning rates.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <euler/check/finite.hpp>
#include <euler/euler.hpp>
#include <euler/train/trainer.hpp>


#include <cmath>
#include <filesystem>
#include <limits>

namespace test_nonfinite {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::string temp_dir(const std::string& name) {
  fs::path dir = euler_test::scratch_dir("nonfinite") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// 40 users of 8 (or 9) items out of 12; every 8th user starts with item "99", which is therefore
// an input of some training examples but never a target.
Dataset small_data(bool with_rare_first_item = false) {
  std::string text;
  for (int u = 0; u < 40; ++u) {
    text += std::to_string(u);
    if (with_rare_first_item && u % 8 == 0) text += " 99";
    for (int k = 0; k < 8; ++k) text += " " + std::to_string(1 + (u * 3 + k * (1 + u % 3)) % 12);
    text += "\n";
  }
  return build_dataset(parse_interactions(text, "small", Format::sequences));
}
EulerFormerConfig small_model() {
  EulerFormerConfig c;
  c.hidden_size = 8;
  c.inner_size = 16;
  c.n_layers = 1;
  c.max_len = 6;
  return c;
}
TrainOptions small_options(int epochs, const std::string& out = "") {
  TrainOptions t;
  t.epochs = epochs;
  t.batch_size = 8;
  t.verbose = t.progress = false;
  t.out_dir = out;
  return t;
}
std::string nonfinite_error(const std::function<void()>& f) { return euler_test::error_of<NonFiniteError>(f); }

}  // namespace

TEST_CASE("finite: first_nonfinite_index finds the first NaN or inf, at any position of a block") {
  std::vector<float> v(1000, 1.5f);
  CHECK(first_nonfinite_index(v.data(), int64_t(v.size())) == -1);
  CHECK(first_nonfinite_index(v.data(), 0) == -1);
  for (int64_t at : {0, 255, 256, 511, 999}) {
    CAPTURE(at);
    std::vector<float> w = v;
    w[size_t(at)] = at % 2 ? -kInf : kNaN;
    w[999] = kInf;
    CHECK(first_nonfinite_index(w.data(), int64_t(w.size())) == at);
  }
  std::vector<double> big(10, std::numeric_limits<double>::max());  // finite, though x * 0 sums are 0
  CHECK(first_nonfinite_index(big.data(), 10) == -1);
}

TEST_CASE("finite: the first non-finite forward value names the op that produced it") {
  Tape<float> tape;
  Var<float> x = tape.input(Tensor<float>::from({3}, {1.0f, 2.0f, 100.0f}));
  Var<float> y = exp(x);        // exp(100) overflows float: inf, first at element 2
  Var<float> z = log(y - 1.0f);  // the log of inf is inf too, but exp came first
  Var<float> loss = sum(z);
  NonFinite bad = find_nonfinite(tape);
  REQUIRE(bad);
  CHECK(bad.where == NonFinite::Where::value);
  CHECK(bad.op == "exp");
  CHECK(bad.node == y.id);
  CHECK(bad.element == 2);
  CHECK(bad.number == kInf);
  CHECK(bad.message() == "value: op 'exp' (node 1, shape [3]) produced the first non-finite value (every node before it is finite), "
                         "first at element 2 (inf)");
  (void)loss;

  Tape<float> clean;
  Var<float> a = clean.input(Tensor<float>::from({2}, {1.0f, 2.0f}));
  clean.backward(sum(exp(a)));
  CHECK_FALSE(find_nonfinite(clean));
  CHECK(find_nonfinite(clean).message() == "all values and gradients are finite");
}

TEST_CASE("finite: a non-finite gradient names the op whose backward produced it") {
  Tape<float> tape;
  Var<float> x = tape.input(Tensor<float>::from({3}, {4.0f, 0.0f, 1.0f}));
  Var<float> r = sqrt(x);  // finite; its derivative 1 / (2 sqrt x) is inf at 0
  Var<float> loss = sum(r * 3.0f);
  tape.backward(loss, BackwardOptions{.keep_intermediate_grads = true});
  CHECK(std::isinf(tape.grad(x)[1]));
  NonFinite bad = find_nonfinite(tape);
  REQUIRE(bad);
  CHECK(bad.where == NonFinite::Where::gradient);
  CHECK(bad.op == "sqrt");
  CHECK(bad.node == r.id);
  CHECK(bad.receiver == x.id);
  CHECK(bad.receiver_op == "input");
  CHECK(bad.element == 1);
  CHECK(bad.message() == "gradient: the backward of op 'sqrt' (node 1, shape [3]) made the gradient of node 0 ('input', shape [3]) "
                         "non-finite, from a finite incoming gradient, first at element 1 (inf)");
}

TEST_CASE("finite: finite contributions that overflow when summed are caught at the backward that tipped them") {
  Tape<float> tape;
  Var<float> x = tape.input(Tensor<float>::from({2}, {1e-30f, 1e-30f}));
  Var<float> a = x * 3e38f, b = x * 3e38f;  // values 3e8; each backward adds 3e38 to dx: finite; together inf
  Var<float> loss = sum(a + b);
  tape.backward(loss, BackwardOptions{.keep_intermediate_grads = true});
  NonFinite bad = find_nonfinite(tape);
  REQUIRE(bad);
  CHECK(bad.op == "affine");
  CHECK(bad.node == a.id);  // the sweep runs b's backward first, then a's tips the sum over
  CHECK(bad.receiver == x.id);
}

TEST_CASE("finite: a non-finite parameter is reported by name, on the tape and in the buffer") {
  Parameters<float> params;
  int w = params.declare("layer.weight", {2, 2});
  params.declare("layer.bias", {2});
  params.allocate();
  CHECK_FALSE(first_nonfinite_parameter(params));
  params.value("layer.bias")[1] = kNaN;
  NonFinite bad = first_nonfinite_parameter(params);
  REQUIRE(bad);
  CHECK(bad.message() == "parameter 'layer.bias' (shape [2]) is non-finite, first at element 1 (nan)");

  params.value("layer.bias")[1] = 0;
  params.value(w)[3] = kInf;
  Tape<float> tape;
  Var<float> W = params.on(tape, w);
  Var<float> loss = sum(W * 2.0f);
  NonFinite on_tape = first_nonfinite_value(tape);
  REQUIRE(on_tape);
  CHECK(on_tape.is_parameter);
  CHECK(on_tape.message() == "value: parameter 'layer.weight' (node 0, shape [2, 2]) was non-finite before the forward pass, first at element 3 (inf)");
  (void)loss;
}

TEST_CASE("trainer: a crafted overflowing weight stops the run at that step, naming the op; the checkpoint stays") {
  Dataset data = small_data();
  std::string dir = temp_dir("stop");
  Trainer<float> first(small_model(), small_options(1, dir), data);
  first.run();
  std::string checkpoint = dir + "/checkpoint.safetensors";
  std::string before = read_file(checkpoint), log_before = read_file(dir + "/log.jsonl");

  Trainer<float> second(small_model(), small_options(3, dir), data);
  second.resume(checkpoint);
  TensorView<float> table = second.model().parameters().value("item_embedding.weight");
  table[3 * 8 + 2] = kInf;
  std::string message = nonfinite_error([&] { second.run(); });
  CHECK_CONTAINS(message, "epoch 2, step 1: loss is ");
  CHECK_CONTAINS(message, "value: parameter 'item_embedding.weight' (node ");
  CHECK_CONTAINS(message, ") was non-finite before the forward pass, first at element 26 (inf)");
  CHECK_CONTAINS(message, "Training stopped; " + checkpoint + " (epoch 1) is unchanged (lower --lr, set --clip, or pass --on-nonfinite skip)");
  CHECK(read_file(checkpoint) == before);
  CHECK(read_file(dir + "/log.jsonl") == log_before);
  Trainer<float> third(small_model(), small_options(3), data);
  third.resume(checkpoint);
  CHECK(third.state().epoch == 1);

  // A finite but huge weight overflows inside the model: the op is named, not the parameter.
  std::string dir4 = temp_dir("stop2");
  Trainer<float> fourth(small_model(), small_options(1, dir4), data);
  TensorView<float> table4 = fourth.model().parameters().value("item_embedding.weight");
  for (int d = 0; d < 8; ++d) table4[3 * 8 + d] = 1e30f;
  message = nonfinite_error([&] { fourth.run(); });
  CHECK_CONTAINS(message, "epoch 1, step 1: ");
  // Float gradients of 1e30 have squares Adam's second moment cannot hold, so, depending on where
  // the overflow shows first, the step's gradients or the update are named.
  CHECK_MESSAGE((message.find("from a finite incoming gradient") != std::string::npos ||
                 message.find("the optimizer step (lr 0.001, gradient norm") != std::string::npos),
                message);
  CHECK_CONTAINS(message, "Training stopped before the first checkpoint");
  CHECK_FALSE(fs::exists(dir4 + "/checkpoint.safetensors"));
}

TEST_CASE("trainer: a huge learning rate is caught at the step where it overflows") {
  Dataset data = small_data();
  TrainOptions t = small_options(2);
  t.lr = 1e30;  // the first step is finite (parameters of about 1e30), the second overflows in the forward
  Trainer<float> a(small_model(), t, data);
  std::string message = nonfinite_error([&] { a.run(); });
  CHECK_CONTAINS(message, "epoch 1, step 2: loss is ");
  CHECK_CONTAINS(message, "; value: op '");
  CHECK_CONTAINS(message, "produced the first non-finite value (every node before it is finite)");
  CHECK_CONTAINS(message, ". Training stopped (lower --lr");

  t.lr = 1e38;  // the update itself is inf
  Trainer<float> b(small_model(), t, data);
  message = nonfinite_error([&] { b.run(); });
  CHECK_CONTAINS(message, "epoch 1, step 1: the optimizer step (lr 1e+38, gradient norm ");
  CHECK_CONTAINS(message, ") made a parameter non-finite: parameter '");
}

TEST_CASE("trainer: NaN validation scores stop the run, or with skip are counted and ranked last") {
  Dataset data = small_data();
  TrainOptions t = small_options(1, temp_dir("valid"));
  t.batch_size = 4096;  // one step per epoch: its update (lr 1e30) is finite, the next forward is not
  t.lr = 1e30;
  Trainer<float> a(small_model(), t, data);
  std::string message = nonfinite_error([&] { a.run(); });
  CHECK_CONTAINS(message, "epoch 1: the validation scores of 40 of 40 users hold NaN or inf; value: op '");
  CHECK_CONTAINS(message, "Training stopped before the first checkpoint");

  t.on_nonfinite = NonFiniteAction::skip;
  Trainer<float> b(small_model(), t, data);
  b.run();
  nlohmann::json line = nlohmann::json::parse(read_file(t.out_dir + "/log.jsonl"));
  CHECK(line["valid_unusable_users"].get<int>() == 40);
}

TEST_CASE("trainer: on_nonfinite = skip skips the steps that overflow and trains on the others") {
  // Item 99's embedding is -3e38 in channels 0 and 1: a batch holding it as an input overflows in
  // the input LayerNorm (the channel sum is -inf). Its score h . e_99 is -inf when h_0 = h_1 = 1
  // (the last LayerNorm's gain 0 and bias 1 there), so it gets no probability and no gradient, and
  // batches without it as an input stay finite.
  Dataset data = small_data(/*with_rare_first_item=*/true);
  std::string dir = temp_dir("skip");
  TrainOptions t = small_options(2, dir);
  t.on_nonfinite = NonFiniteAction::skip;
  Trainer<float> trainer(small_model(), t, data);
  Parameters<float>& p = trainer.model().parameters();
  int32_t rare = data.item_id("99");
  p.value("item_embedding.weight")[rare * 8 + 0] = p.value("item_embedding.weight")[rare * 8 + 1] = -3e38f;
  for (int k = 0; k < 2; ++k) {
    p.value("trm_encoder.layer.0.feed_forward.LayerNorm.weight")[k] = 0;
    p.value("trm_encoder.layer.0.feed_forward.LayerNorm.bias")[k] = 1;
  }
  nlohmann::json result = trainer.run();
  CHECK(result["epochs"].get<int>() == 2);
  CHECK(std::isfinite(result["test_ndcg@10"].get<double>()));
  std::string log = read_file(dir + "/log.jsonl");
  int64_t steps_per_epoch = (trainer.examples_per_epoch() + 7) / 8;
  for (size_t start = 0, end; (end = log.find('\n', start)) != std::string::npos; start = end + 1) {
    nlohmann::json line = nlohmann::json::parse(log.substr(start, end - start));
    REQUIRE(line.contains("skipped_steps"));
    CHECK(line["skipped_steps"].get<int64_t>() > 0);
    CHECK(line["skipped_steps"].get<int64_t>() < steps_per_epoch);
    CHECK(std::isfinite(line["loss"].get<double>()));
  }
  // Only the crafted entries are non-finite: skipped steps changed nothing.
  p.value("item_embedding.weight")[rare * 8 + 0] = p.value("item_embedding.weight")[rare * 8 + 1] = 0;
  CHECK_FALSE(first_nonfinite_parameter(p));

  // When every step of an epoch overflows, skipping cannot help: the run stops.
  TrainOptions all = small_options(2);
  all.on_nonfinite = NonFiniteAction::skip;
  Dataset plain = small_data();
  Trainer<float> hopeless(small_model(), all, plain);
  hopeless.model().parameters().value("LayerNorm.weight")[0] = kNaN;
  std::string message = nonfinite_error([&] { hopeless.run(); });
  CHECK_CONTAINS(message, "every step of epoch 1 was non-finite; the last: epoch 1, step ");
  CHECK_CONTAINS(message, "parameter 'LayerNorm.weight'");
  CHECK_CONTAINS(message, "(lower --lr or set --clip)");
}

}  // namespace test_nonfinite

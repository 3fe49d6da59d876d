// `euler grad` end to end: a checkpoint and a batch file in, every parameter's gradient out, equal to
// the gradients computed in process; and clear errors for bad invocations.
#include <doctest/doctest.h>

#include "cli_helpers.hpp"

#include <euler/data/batch_file.hpp>
#include <euler/eulerformer.hpp>

#include <filesystem>
#include <fstream>

namespace test_cli_grad {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

namespace {
std::string temp_path(const std::string& name) { return euler_test::temp_path("cli_grad", name); }
int run(const std::string& args, const std::string& log) { return euler_test::run_cli(args, log); }
}  // namespace

TEST_CASE("euler grad writes every parameter's gradient, equal to the in-process gradients") {
  for (Backbone backbone : {Backbone::sasrec, Backbone::bert4rec}) {
    CAPTURE(to_string(backbone));
    EulerFormerConfig c;
    c.n_items = 12;
    c.hidden_size = 8;
    c.inner_size = 16;
    c.max_len = 5;
    c.lamb = 0.1;
    c.backbone = backbone;
    EulerFormer<double> model(c, 17);
    std::string weights = temp_path("model.safetensors"), batch = temp_path("batch.txt"), out = temp_path("grads.safetensors");
    save_weights(weights, model);
    std::ofstream(batch) << "1 2 3 4\n# a comment\n\n5 6 7 8 9 10 11 3\n2 9\n";
    REQUIRE(run("grad --weights " + weights + " --batch " + batch + " --out " + out + " --dtype double", temp_path("log")) == 0);

    // The same in process.
    auto lists = read_id_lists(batch, c.n_items - 1);
    REQUIRE(lists.size() == 3);
    GradBatch g = make_grad_batch(lists, c, batch);
    Tape<double> tape;
    Rng rng(0);
    Context<double> ctx{tape, model.parameters(), false, rng};
    Losses<double> losses = model.loss(ctx, {g.ids.view(), g.targets.view()});
    tape.backward(losses.total);

    auto file = safetensors::File::read(out);
    CHECK(file.tensor<double>("loss")[0] == doctest::Approx(losses.total.value()[0]).epsilon(1e-12));
    CHECK(file.tensor<double>("loss_ce")[0] == doctest::Approx(losses.ce.value()[0]).epsilon(1e-12));
    CHECK(file.tensor<double>("loss_con")[0] == doctest::Approx(losses.contrastive.value()[0]).epsilon(1e-12));
    CHECK(losses.contrastive.value()[0] > 0);
    const auto& p = model.parameters();
    for (int i = 0; i < p.count(); ++i) {
      CAPTURE(p.entry(i).name);
      auto written = file.tensor<double>(p.entry(i).name);
      REQUIRE(written.shape() == (p.grad(i).shape.rank == 0 ? Shape{1} : p.grad(i).shape));  // scalars as PyTorch's [1]
      for (int64_t k = 0; k < written.numel(); ++k) REQUIRE(written[k] == doctest::Approx(p.grad(i)[k]).epsilon(1e-12));
    }
    CHECK(int(file.tensors().size()) == p.count() + 3);
  }
}

TEST_CASE("euler grad --padding-idx: only row 0 of the item table loses its lookup gradient") {
  EulerFormerConfig c;
  c.n_items = 12;
  c.hidden_size = 8;
  c.inner_size = 16;
  c.max_len = 5;
  c.lamb = 0.1;  // the contrastive loss reaches the padding positions' embeddings
  EulerFormer<double> model(c, 17);
  std::string weights = temp_path("padding_model.safetensors"), batch = temp_path("padding_batch.txt");
  std::string plain = temp_path("plain.safetensors"), padded = temp_path("padded.safetensors");
  save_weights(weights, model);
  std::ofstream(batch) << "1 2 3\n5 6 7 8 9\n";  // the first list is padded
  REQUIRE(run("grad --weights " + weights + " --batch " + batch + " --out " + plain + " --dtype double", temp_path("log")) == 0);
  REQUIRE(run("grad --weights " + weights + " --batch " + batch + " --out " + padded + " --dtype double --padding-idx", temp_path("log")) == 0);
  auto a = safetensors::File::read(plain), b = safetensors::File::read(padded);
  for (const auto& info : a.tensors()) {
    CAPTURE(info.name);
    Tensor<double> x = a.tensor<double>(info.name), y = b.tensor<double>(info.name);
    REQUIRE(x.numel() == y.numel());
    int64_t first_differing = -1;
    for (int64_t k = 0; k < x.numel() && first_differing < 0; ++k)
      if (x[k] != y[k]) first_differing = k;
    if (info.name == "item_embedding.weight")
      CHECK((first_differing >= 0 && first_differing < c.hidden_size));  // row 0 differs, ...
    else
      CHECK(first_differing == -1);
  }
  Tensor<double> x = a.tensor<double>("item_embedding.weight"), y = b.tensor<double>("item_embedding.weight");
  for (int64_t k = c.hidden_size; k < x.numel(); ++k) REQUIRE(x[k] == y[k]);  // ... and only row 0
}

TEST_CASE("euler grad: bad invocations give a clear message and a non-zero exit") {
  EulerFormerConfig c;
  c.n_items = 6;
  c.hidden_size = 4;
  c.inner_size = 8;
  c.max_len = 4;
  EulerFormer<float> model(c, 1);
  std::string weights = temp_path("m.safetensors"), log = temp_path("err.log");
  save_weights(weights, model);
  std::string good = temp_path("good.txt"), bad_id = temp_path("bad_id.txt"), word = temp_path("word.txt");
  std::ofstream(good) << "1 2 3\n";
  std::ofstream(bad_id) << "1 2\n3 9\n";
  std::ofstream(word) << "1 two 3\n";
  CHECK(run("grad --weights " + weights + " --batch " + good, log) == 2);
  CHECK(read_file(log).find("missing --out") != std::string::npos);
  CHECK(run("grad --weights " + weights + " --batch " + good + " --out x --frobnicate", log) == 2);
  CHECK(read_file(log).find("frobnicate") != std::string::npos);
  CHECK(run("grad --weights /no/such/file --batch " + good + " --out " + temp_path("o"), log) == 1);
  CHECK(read_file(log).find("/no/such/file") != std::string::npos);
  CHECK(run("grad --weights " + weights + " --batch " + bad_id + " --out " + temp_path("o"), log) == 1);
  CHECK(read_file(log).find(bad_id + ":2: id 9 is outside 1..5") != std::string::npos);
  CHECK(run("grad --weights " + weights + " --batch " + word + " --out " + temp_path("o"), log) == 1);
  CHECK(read_file(log).find(word + ":1: 'two' is not an integer id") != std::string::npos);
  CHECK(run("frobnicate", log) == 2);
  CHECK(read_file(log).find("unknown command 'frobnicate'") != std::string::npos);
}

}  // namespace test_cli_grad

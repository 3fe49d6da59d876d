// euler against PyTorch, in the repository: tests/fixtures/pytorch/*.safetensors hold small models
// (every positional scheme, both objectives, both contrastive modes, scalar and vector delta, both
// backbones, EulerFormer without the absolute position table, RecBole's padding_idx), a batch with padding, and the loss and every gradient as PyTorch computes them in
// float64 with autograd, from a model written after the specification and sharing no code with
// euler (bench/pytorch_fixture.py; the fixtures' README says how to regenerate them). Here euler
// computes the same in double, through the fused layer (what training runs) and the composed ops
// (what the guide teaches), and must agree to 1e-9. Dropout is off on both sides.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <euler/model/weights.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace test_pytorch_fixture {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

namespace {

fs::path fixture_dir() { return fs::path(__FILE__).parent_path() / "fixtures" / "pytorch"; }

// The largest |a - b| / max(1, |b|) over the elements.
double worst_error(TensorView<const double> a, TensorView<const double> b) {
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
  return worst;
}

}  // namespace

TEST_CASE("pytorch fixtures: loss and every gradient equal PyTorch's to 1e-9 (fused and composed layers)") {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(fixture_dir()))
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 13);
  std::set<std::string> schemes, backbones, objectives;
  int euler_without_absolute = 0, with_padding_idx = 0;
  for (const fs::path& path : files) {
    CAPTURE(path.filename().string());
    safetensors::File file = safetensors::File::read(path.string());
    EulerFormerConfig config = read_config(file);
    schemes.insert(std::string(to_string(config.pos)));
    backbones.insert(std::string(to_string(config.backbone)));
    objectives.insert(std::string(to_string(config.objective)));
    euler_without_absolute += config.uses_euler() && !config.absolute_positions;
    with_padding_idx += config.padding_idx;
    EulerFormer<double> model(config);
    Parameters<double>& params = model.parameters();
    // The same parameters on both sides: every one of euler's is in the file, with its gradient,
    // and the file has no other.
    std::set<std::string> names;
    for (int i = 0; i < params.count(); ++i) {
      const std::string& name = params.entry(i).name;
      names.insert(name);
      REQUIRE_MESSAGE(file.contains(name), "PyTorch's model has no parameter " << name);
      file.copy_to(name, params.value(i));
    }
    for (const auto& info : file.tensors())
      if (info.name.rfind("fixture.", 0) != 0) CHECK_MESSAGE(names.count(info.name) == 1, "euler's model has no parameter " << info.name);
    Tensor<int32_t> ids = file.tensor<int32_t>("fixture.ids"), targets = file.tensor<int32_t>("fixture.targets");
    Tensor<double> expected_loss = file.tensor<double>("fixture.loss");  // total, cross-entropy, contrastive

    for (bool fused : {true, false}) {
      CAPTURE(fused);
      model.set_fused(fused);
      Tape<double> tape;
      Rng unused(0);
      Context<double> ctx{tape, params, /*dropout_on=*/false, unused};
      params.zero_grad();
      Losses<double> losses = model.loss(ctx, {ids.view(), targets.view()});
      tape.backward(losses.total);
      CHECK(losses.total.value()[0] == doctest::Approx(expected_loss[0]).epsilon(1e-9));
      CHECK(losses.ce.value()[0] == doctest::Approx(expected_loss[1]).epsilon(1e-9));
      CHECK(losses.contrastive.value()[0] == doctest::Approx(expected_loss[2]).epsilon(1e-9).scale(1));
      for (int i = 0; i < params.count(); ++i) {
        const std::string& name = params.entry(i).name;
        Tensor<double> expected = file.tensor<double>("fixture.grad." + name);
        CAPTURE(name);
        CHECK(worst_error(params.grad(i), expected.view()) < 1e-9);
      }
    }
  }
  // The fixtures cover what they claim to.
  CHECK(schemes == std::set<std::string>{"euler", "learned", "rope"});
  CHECK(backbones == std::set<std::string>{"bert4rec", "sasrec"});
  CHECK(objectives == std::set<std::string>{"all", "last"});
  CHECK(euler_without_absolute >= 1);
  CHECK(with_padding_idx >= 1);
}

}  // namespace test_pytorch_fixture

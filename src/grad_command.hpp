// `euler grad`: one forward and backward of a checkpoint on a batch file, every gradient written out.
//
// Loads weights and config from safetensors, reads the batch file (one list per line: history then
// target), runs the loss with every dropout off, and writes a safetensors file holding loss, loss_ce,
// loss_con and, under each parameter's name, its gradient. This is how users compare euler with the
// authors' PyTorch code and study where gradients flow.
#pragma once

#include <cxxopts.hpp>

#include <iostream>
#include <stdexcept>

#include <euler/check/finite.hpp>
#include <euler/data/batch_file.hpp>
#include <euler/eulerformer.hpp>
#include <euler/train/memory.hpp>

#include "common_options.hpp"

namespace euler::cli {

template <class T>
int run_grad(const std::string& weights, const std::string& batch_path, const std::string& out_path, int64_t max_memory,
             bool padding_idx) {
  safetensors::File file = safetensors::File::read(weights);
  EulerFormerConfig config = read_config(file);
  config.padding_idx = config.padding_idx || padding_idx;  // changes no forward value, only row 0's gradient
  EulerFormer<T> model(config);
  load_weights(file, model);
  const EulerFormerConfig& c = model.config();
  // Ids a list may hold: real items 1..n_items-1 (the mask token is added by the batch builder).
  auto lists = read_id_lists(batch_path, c.n_items - 1, /*min_length=*/2);
  GradBatch g = make_grad_batch(lists, c, batch_path);
  MemoryShape shape;  // one training step on the batch's lists
  shape.config = c;
  shape.parameters = model.parameters().numel();
  shape.batch = int64_t(lists.size());
  shape.threads = num_threads();
  check_memory(shape, max_memory, "euler grad on " + batch_path);

  Tape<T> tape;
  Rng rng(0);
  Context<T> ctx{tape, model.parameters(), /*dropout_on=*/false, rng};
  model.parameters().zero_grad();
  Losses<T> losses = model.loss(ctx, {g.ids.view(), g.targets.view()});
  tape.backward(losses.total);
  // A loss or gradient of NaN or inf is refused, not written: such a file would compare as garbage.
  if (NonFinite bad = first_nonfinite_value(tape))
    throw std::runtime_error(batch_path + ": the loss with the weights of " + weights + " is not finite; nothing written (" + bad.message() + ")");
  const Parameters<T>& p = model.parameters();
  for (int i = 0; i < p.count(); ++i) {
    TensorView<T> gradient = p.grad(i);
    if (int64_t k = first_nonfinite_index(gradient.data, gradient.numel()); k >= 0)
      throw std::runtime_error(batch_path + ": the gradient of " + p.entry(i).name + " with the weights of " + weights +
                               " is not finite at element " + std::to_string(k) + "; nothing written");
  }

  safetensors::Writer out;
  out.metadata["config"] = c.to_json().dump();
  out.metadata["batch"] = batch_path;
  out.add("loss", losses.total.value());
  out.add("loss_ce", losses.ce.value());
  out.add("loss_con", losses.contrastive.value());
  for (int i = 0; i < p.count(); ++i) {  // scalars as [1], as PyTorch's parameter.grad of nn.Parameter(torch.ones(1))
    TensorView<T> gradient = p.grad(i);
    if (gradient.shape.rank == 0) gradient.shape = Shape{1};
    out.add(p.entry(i).name, gradient);
  }
  out.write(out_path);
  nlohmann::json line = {{"loss", double(losses.total.value()[0])}, {"loss_ce", double(losses.ce.value()[0])},
                         {"loss_con", double(losses.contrastive.value()[0])}, {"lists", lists.size()},
                         {"parameters", p.count()}, {"out", out_path}};
  std::cout << json_text(line) << std::endl;
  return 0;
}

inline int grad_command(int argc, char** argv) {
  cxxopts::Options options("euler grad",
                           "One forward and backward of a checkpoint (dropout off); writes the loss and every "
                           "parameter's gradient to safetensors.");
  options.add_options()
      ("weights", "checkpoint (.safetensors with the config in its metadata)", cxxopts::value<std::string>())
      ("batch", "batch file: one list per line, history item ids in time order then the target id",
       cxxopts::value<std::string>())
      ("out", "output .safetensors: loss, loss_ce, loss_con and the gradients under the parameter names",
       cxxopts::value<std::string>())
      ("dtype", "float or double", cxxopts::value<std::string>()->default_value("float"))
      ("padding-idx", "row 0 of the item table gets no gradient from lookups, as RecBole's nn.Embedding(padding_idx=0) "
       "(on already when the checkpoint's config has padding_idx)")
      ("threads", threads_help(), cxxopts::value<int>()->default_value(default_threads()))
      ("h,help", "show this help");
  add_memory_option(options);
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  for (const char* required : {"weights", "batch", "out"})
    if (!args.count(required)) throw cxxopts::exceptions::exception(std::string("missing --") + required);
  set_num_threads(thread_count(args));
  std::string dtype = args["dtype"].as<std::string>();
  const int64_t limit = memory_limit(args);
  const std::string weights = args["weights"].as<std::string>(), batch = args["batch"].as<std::string>(), out = args["out"].as<std::string>();
  const bool padding_idx = args.count("padding-idx") > 0;
  if (dtype == "float") return run_grad<float>(weights, batch, out, limit, padding_idx);
  if (dtype == "double") return run_grad<double>(weights, batch, out, limit, padding_idx);
  throw cxxopts::exceptions::exception("--dtype must be float or double, got " + dtype);
}

}  // namespace euler::cli

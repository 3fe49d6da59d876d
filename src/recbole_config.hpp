// `euler train --config FILE.yaml`: a RecBole configuration file, read with RecBole's meaning.
//
// RecBole users bring a YAML file (the authors' config_files/ml.yaml, say). Its keys become what
// euler would be told on the command line:
//   - model keys (n_layers, hidden_size, MAX_ITEM_LIST_LENGTH, hidden_dropout_prob, init_factor, lamb,
//     ... and euler's own pos, backbone, objective, ...: every key of EulerFormerConfig::to_json) go
//     into the model config, as a JSON --config does;
//   - training, evaluation and data keys (learning_rate, train_batch_size, stopping_step, epochs, seed,
//     valid_metric, val_interval, user_inter_num_interval, ...) become flags, as if written before
//     the user's own: a flag on the command line wins over the file;
//   - a training or data key the file does not set takes RecBole's default, not euler's (a RecBole
//     config means what it means in RecBole): 300 epochs, batch 2048, stopping_step 10, seed 2020,
//     valid_metric MRR@10, no rating filter and no k-core, duplicates kept;
//   - a key that would change what is trained or measured and that euler cannot do (loss_type BPR,
//     negative sampling, a random split, sampled evaluation, ...) is an error naming the file, the
//     line and the key; a key with no effect in euler (gpu_id, field_separator, ...) is listed in one
//     warning, never dropped silently.
// docs/recbole.md has the table of every key and its flag. The YAML is parsed by yaml-cpp (Debian:
// libyaml-cpp-dev); a build without it refuses a .yaml file, saying so.
#pragma once

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#if EULER_WITH_YAML
#include <yaml-cpp/yaml.h>
#endif

#include <euler/model/config.hpp>

namespace euler::cli {

// What a RecBole file says, in euler's terms.
struct RecBoleConfig {
  nlohmann::json model = nlohmann::json::object();  // EulerFormerConfig keys
  std::vector<std::pair<std::string, std::string>> flags;  // {"--lr", "0.01"}; {"--adamw", ""} for a switch
  std::vector<std::string> unused;    // keys with no effect in euler (the warning)
  std::vector<std::string> defaults;  // RecBole defaults applied for keys the file does not set (printed)
};

inline bool is_yaml_path(const std::string& path) {
  auto ends_with = [&](const char* suffix) {
    std::string s = suffix;
    return path.size() >= s.size() && std::equal(s.rbegin(), s.rend(), path.rbegin(),
                                                 [](char a, char b) { return std::tolower((unsigned char)a) == b; });
  };
  return ends_with(".yaml") || ends_with(".yml");
}

#if EULER_WITH_YAML
namespace recbole_detail {

// A YAML node as JSON: plain scalars that read as null, true/false, an integer or a number become
// those; quoted scalars stay strings (so "[3,inf)" and "1" quoted are text).
inline nlohmann::json to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return nullptr;
    case YAML::NodeType::Sequence: {
      nlohmann::json list = nlohmann::json::array();
      for (const YAML::Node& item : node) list.push_back(to_json(item));
      return list;
    }
    case YAML::NodeType::Map: {
      nlohmann::json map = nlohmann::json::object();
      for (const auto& entry : node) map[entry.first.Scalar()] = to_json(entry.second);
      return map;
    }
    case YAML::NodeType::Scalar: break;
  }
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted
  if (text == "~" || text == "null" || text == "Null" || text == "NULL" || text.empty()) return nullptr;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  const char* first = text.data() + (text[0] == '+');
  const char* last = text.data() + text.size();
  int64_t integer = 0;
  if (auto [end, error] = std::from_chars(first, last, integer); error == std::errc() && end == last) return integer;
  double number = 0;
  if (auto [end, error] = std::from_chars(first, last, number); error == std::errc() && end == last && std::isfinite(number))
    return number;
  return text;
}

// RecBole's interval strings: "[10,inf)" -> 10. Only a closed lower bound and no upper bound are
// something euler's filters do; anything else is an error (thrown as a message, the caller adds where).
inline double lower_bound_of(const nlohmann::json& value) {
  if (!value.is_string()) throw std::string("must be an interval such as \"[10,inf)\", got " + value.dump());
  std::string text;
  for (char ch : value.get<std::string>())
    if (!std::isspace((unsigned char)ch)) text += ch;
  const size_t comma = text.find(',');
  if (text.size() < 5 || comma == std::string::npos || (text.front() != '[' && text.front() != '(') ||
      (text.back() != ')' && text.back() != ']'))
    throw std::string("must be an interval such as \"[10,inf)\", got " + value.dump());
  const std::string low = text.substr(1, comma - 1), high = text.substr(comma + 1, text.size() - comma - 2);
  if (high != "inf") throw std::string("has the upper bound " + high + "; euler's filters keep everything at or above a minimum");
  if (text.front() != '[') throw std::string("excludes its lower bound; write it as \"[" + low + ",inf)\"");
  double bound = 0;
  auto [end, error] = std::from_chars(low.data(), low.data() + low.size(), bound);
  if (low.empty() || error != std::errc() || end != low.data() + low.size() || !std::isfinite(bound))
    throw std::string("has the lower bound '" + low + "', which is not a number");
  return bound;
}

inline std::string number_text(const nlohmann::json& value) {
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  char buffer[32];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value.get<double>());
  return std::string(buffer, end);
}

}  // namespace recbole_detail

// Reads `path` (YAML, RecBole's keys). Every problem is a ConfigError "path:line: key 'name' ...".
inline RecBoleConfig read_recbole_config(const std::string& path) {
  using namespace recbole_detail;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(path + ": cannot read the file");
  } catch (const YAML::ParserException& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": not valid YAML: " + e.msg);
  }
  if (root.IsNull()) throw ConfigError(path + ": the file holds no settings");
  if (!root.IsMap()) throw ConfigError(path + ": expected a mapping of RecBole keys (key: value lines)");

  RecBoleConfig out;
  std::map<std::string, std::string> flags;  // flag -> value, in the end sorted into out.flags
  const nlohmann::json model_keys = EulerFormerConfig{}.to_json();
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    const nlohmann::json value = to_json(entry.second);
    const std::string where = path + ":" + std::to_string(entry.first.Mark().line + 1) + ": key '" + key + "' ";
    auto fail = [&](const std::string& why) -> void { throw ConfigError(where + why); };
    auto number = [&](bool integer) {
      if (!(integer ? value.is_number_integer() : value.is_number()))
        fail(std::string("must be ") + (integer ? "an integer" : "a number") + ", got " + value.dump());
      return number_text(value);
    };
    auto text = [&]() {
      if (!value.is_string()) fail("must be a string, got " + value.dump());
      return value.get<std::string>();
    };
    auto lower = [&](const std::string& s) {
      std::string l = s;
      std::transform(l.begin(), l.end(), l.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
      return l;
    };
    auto interval = [&](const char* flag) {
      try {
        flags[flag] = number_text(nlohmann::json(int64_t(std::ceil(lower_bound_of(value)))));
      } catch (const std::string& why) {
        fail(why);
      }
    };
    if (model_keys.contains(key) && key != "n_items") {
      out.model[key] = value;  // checked by EulerFormerConfig::from_json, which names the key
    } else if (key == "learning_rate") {
      flags["--lr"] = number(false);
    } else if (key == "train_batch_size") {
      flags["--batch-size"] = number(true);
    } else if (key == "eval_batch_size") {
      flags["--eval-batch"] = number(true);
    } else if (key == "epochs") {
      flags["--epochs"] = number(true);
    } else if (key == "stopping_step") {
      flags["--patience"] = number(true);
    } else if (key == "seed") {
      flags["--seed"] = number(true);
    } else if (key == "weight_decay") {
      flags["--weight-decay"] = number(false);
    } else if (key == "valid_metric") {
      flags["--valid-metric"] = lower(text());
    } else if (key == "valid_metric_bigger") {
      if (value != true) fail("is " + value.dump() + "; every metric euler computes is better when bigger");
    } else if (key == "learner") {
      std::string learner = lower(text());
      if (learner == "adamw") flags["--adamw"] = "";
      else if (learner != "adam") fail("is '" + text() + "'; euler trains with adam or adamw");
    } else if (key == "clip_grad_norm") {
      if (value.is_null()) continue;
      if (!value.is_object() || !value.contains("max_norm") || !value["max_norm"].is_number())
        fail("must be ~ or a mapping with max_norm (and norm_type 2), got " + value.dump());
      if (value.contains("norm_type") && value["norm_type"] != 2) fail("has norm_type " + value["norm_type"].dump() + "; euler clips the 2-norm");
      flags["--clip"] = number_text(value["max_norm"]);
    } else if (key == "loss_type") {
      if (text() != "CE") fail("is '" + text() + "'; euler trains with cross-entropy over all items (CE)");
    } else if (key == "train_neg_sample_args" || key == "neg_sampling") {
      if (!value.is_null()) fail("asks for negative sampling; euler's cross-entropy uses every item (write ~)");
    } else if (key == "eval_args") {
      if (!value.is_object()) fail("must be a mapping (split, order, mode, group_by), got " + value.dump());
      for (const auto& [name, setting] : value.items()) {
        if (name == "split") {
          if (setting != nlohmann::json{{"LS", "valid_and_test"}})
            fail("has split " + setting.dump() + "; euler splits leave-one-out: {'LS': 'valid_and_test'}");
        } else if (name == "order") {
          if (setting != "TO") fail("has order " + setting.dump() + "; euler orders each user's items by time (TO)");
        } else if (name == "mode") {
          if (!(setting == "full" || (setting.is_object() && setting.size() == 2 && setting.value("valid", "") == "full" &&
                                      setting.value("test", "") == "full")))
            fail("has mode " + setting.dump() + "; euler ranks every item (full)");
        } else if (name == "group_by") {
          if (setting != "user") fail("has group_by " + setting.dump() + "; euler evaluates per user");
        } else {
          fail("has '" + name + "', which euler does not know (split, order, mode, group_by)");
        }
      }
    } else if (key == "val_interval" || key == "lowest_val") {
      if (value.is_null()) continue;
      if (!value.is_object()) fail("must be a mapping such as {rating: \"[3,inf)\"}, got " + value.dump());
      for (const auto& [field, bound] : value.items()) {
        if (field != "rating") fail("filters '" + field + "'; euler filters by rating only");
        if (key == "lowest_val") {
          if (!bound.is_number()) fail("rating must be a number, got " + bound.dump());
          flags["--min-rating"] = number_text(bound);
        } else {
          try {
            flags["--min-rating"] = number_text(nlohmann::json(lower_bound_of(bound)));
          } catch (const std::string& why) {
            fail("rating " + why);
          }
        }
      }
    } else if (key == "user_inter_num_interval") {
      interval("--min-user");
    } else if (key == "item_inter_num_interval") {
      interval("--min-item");
    } else if (key == "min_user_inter_num") {
      flags["--min-user"] = number(true);
    } else if (key == "min_item_inter_num") {
      flags["--min-item"] = number(true);
    } else if (key == "rm_dup_inter") {
      if (!value.is_null()) fail("is " + value.dump() + "; euler keeps duplicates (~) or drops them with --dedup exact|consecutive");
    } else if (key == "USER_ID_FIELD") {
      flags["--user-column"] = text();
    } else if (key == "ITEM_ID_FIELD") {
      flags["--item-column"] = text();
    } else if (key == "RATING_FIELD") {
      flags["--rating-column"] = text();
    } else if (key == "TIME_FIELD") {
      flags["--time-column"] = text();
    } else if (key == "topk") {
      for (const nlohmann::json& k : value.is_array() ? value : nlohmann::json::array({value}))
        if (!k.is_number_integer() || (k != 5 && k != 10 && k != 20))
          fail("asks for " + k.dump() + "; euler reports @5, @10 and @20 (and the valid metric's cutoff)");
    } else if (key == "metrics") {
      for (const nlohmann::json& m : value.is_array() ? value : nlohmann::json::array({value}))
        if (!m.is_string() || !(lower(m) == "recall" || lower(m) == "mrr" || lower(m) == "ndcg" || lower(m) == "hit"))
          fail("asks for " + m.dump() + "; euler reports Recall (= Hit with one target), MRR and NDCG");
    } else if (key == "model" || key == "MODEL") {
      std::string model = lower(text());
      if (model == "sasrec" || model == "eulerformer") out.model["backbone"] = "sasrec";
      else if (model == "bert4rec") out.model["backbone"] = "bert4rec";
      else fail("is '" + text() + "'; euler trains SASRec and BERT4Rec (with --pos for the positional scheme)");
    } else {
      out.unused.push_back(key);
    }
  }
  // RecBole's defaults for what the file leaves out (recbole/properties/overall.yaml and dataset defaults).
  const std::vector<std::tuple<const char*, const char*, const char*>> recbole_defaults = {
      {"--epochs", "300", "epochs 300"},
      {"--batch-size", "2048", "train_batch_size 2048"},
      {"--patience", "10", "stopping_step 10"},
      {"--seed", "2020", "seed 2020"},
      {"--valid-metric", "mrr@10", "valid_metric MRR@10"},
      {"--min-rating", "-1", "no rating filter"},
      {"--min-user", "0", "no user k-core"},
      {"--min-item", "0", "no item k-core"},
      {"--dedup", "none", "duplicates kept"}};
  for (auto [flag, fallback, what] : recbole_defaults)
    if (!flags.count(flag)) {
      flags[flag] = fallback;
      out.defaults.push_back(what);
    }
  for (auto& [flag, value] : flags) out.flags.push_back({flag, value});
  return out;
}
#else
inline RecBoleConfig read_recbole_config(const std::string& path) {
  throw ConfigError(path + ": this euler was built without yaml-cpp, so it reads JSON configs only "
                           "(install libyaml-cpp-dev, or scripts/install-deps.sh, and rebuild)");
}
#endif

}  // namespace euler::cli

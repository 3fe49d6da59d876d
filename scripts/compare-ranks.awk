# Paired comparison of two checkpoints on the same users, from `euler eval --ranks FILE` tables:
#
#     awk -f scripts/compare-ranks.awk A.tsv B.tsv                      # test NDCG@10, B minus A
#     awk -v metric=hr -v k=20 -v target=valid -f scripts/compare-ranks.awk A.tsv B.tsv
#
# metric: ndcg | hr | mrr (default ndcg); k (default 10); target: test | valid (default test).
# Prints each file's mean, the mean per-user difference B - A, its standard error and z = mean / error.
# The error covers the draw of users only, not the training seed. Both files must hold the same users.
function score(rank) {
  if (rank > k) return 0
  if (metric == "hr") return 1
  if (metric == "mrr") return 1 / rank
  return log(2) / log(rank + 1)
}
function fail(message) { print "compare-ranks: " message > "/dev/stderr"; failed = 1; exit 1 }
BEGIN {
  FS = "\t"
  if (metric == "") metric = "ndcg"
  if (k == "") k = 10
  if (target == "") target = "test"
  if (metric != "ndcg" && metric != "hr" && metric != "mrr") fail("metric must be ndcg, hr or mrr, got '" metric "'")
  if (target != "test" && target != "valid") fail("target must be test or valid, got '" target "'")
  if (k !~ /^[0-9]+$/ || k < 1) fail("k must be a positive integer, got '" k "'")
  column = target == "test" ? 3 : 2
  if (ARGC != 3) fail("give two rank files (euler eval --ranks), got " ARGC - 1)
}
FNR == 1 {
  if ($0 != "user\tvalid_rank\ttest_rank") fail(FILENAME ":1: not an `euler eval --ranks` table (header '" $0 "')")
  next
}
{
  if (NF != 3 || $2 !~ /^[1-9][0-9]*$/ || $3 !~ /^[1-9][0-9]*$/) fail(FILENAME ":" FNR ": expected user, valid_rank, test_rank")
}
NR == FNR {
  if ($1 in a) fail(FILENAME ":" FNR ": user " $1 " appears twice")
  a[$1] = score($column); users_a++
  next
}
{
  if (!($1 in a)) fail(FILENAME ":" FNR ": user " $1 " is not in " ARGV[1])
  if ($1 in seen) fail(FILENAME ":" FNR ": user " $1 " appears twice")
  seen[$1] = 1
  b = score($column); d = b - a[$1]
  n++; sum_a += a[$1]; sum_b += b; sum_d += d; sum_dd += d * d
}
END {
  if (failed) exit 1
  if (n != users_a) fail(ARGV[2] " has " n " users, " ARGV[1] " has " users_a)
  if (n < 2) fail("need at least 2 users, got " n)
  mean = sum_d / n
  variance = (sum_dd - n * mean * mean) / (n - 1)
  error = sqrt(variance > 0 ? variance : 0) / sqrt(n)
  z = (error > 0) ? sprintf("%.2f", mean / error) : "undefined (no per-user difference)"
  printf("%s %s@%d over %d users: A %.4f, B %.4f, B - A %+.4f, standard error %.4f, z %s\n", target, metric, k, n,
         sum_a / n, sum_b / n, mean, error, z)
}

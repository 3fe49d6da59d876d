# scripts/compare-ranks.awk on small crafted rank tables, run by ctest:
#   cmake -D AWK=awk -D SCRIPT=scripts/compare-ranks.awk -D WORK=dir -P tests/compare_ranks.cmake
# The expected figures were worked out by hand: NDCG@10 of rank r is 1 / log2(r + 1).
file(MAKE_DIRECTORY "${WORK}")
set(header "user\tvalid_rank\ttest_rank\n")
file(WRITE "${WORK}/a.tsv" "${header}u1\t1\t1\nu2\t3\t20\nu3\t2\t4\n")
file(WRITE "${WORK}/b.tsv" "${header}u3\t5\t1\nu1\t1\t2\nu2\t30\t3\n")  # the same users, in another order
file(WRITE "${WORK}/missing.tsv" "${header}u1\t1\t1\nu2\t3\t20\nu4\t2\t4\n")
file(WRITE "${WORK}/twice.tsv" "${header}u1\t1\t1\nu1\t3\t20\nu3\t2\t4\n")
file(WRITE "${WORK}/bad.tsv" "${header}u1\t1\t1\nu2\tthree\t20\nu3\t2\t4\n")

function(expect_output want)
  execute_process(COMMAND "${AWK}" ${ARGN} -f "${SCRIPT}" "${WORK}/a.tsv" "${WORK}/b.tsv"
                  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0 OR NOT out STREQUAL "${want}\n")
    message(FATAL_ERROR "awk ${ARGN}: exit ${status}\n  got:  '${out}' ${err}\n  want: '${want}'")
  endif()
endfunction()

# per user (A, B): u1 (1, 0.6309), u2 (0, 0.5), u3 (0.4307, 1)
expect_output("test ndcg@10 over 3 users: A 0.4769, B 0.7103, B - A +0.2334, standard error 0.3019, z 0.77")
expect_output("test hr@10 over 3 users: A 0.6667, B 1.0000, B - A +0.3333, standard error 0.3333, z 1.00" -v metric=hr)
expect_output("valid mrr@10 over 3 users: A 0.6111, B 0.4000, B - A -0.2111, standard error 0.1060, z -1.99"
              -v metric=mrr -v target=valid)
expect_output("test hr@3 over 3 users: A 0.3333, B 1.0000, B - A +0.6667, standard error 0.3333, z 2.00" -v metric=hr -v k=3)

function(expect_failure want second)
  execute_process(COMMAND "${AWK}" ${ARGN} -f "${SCRIPT}" "${WORK}/a.tsv" ${second}
                  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(FIND "${err}" "${want}" at)
  if(status EQUAL 0 OR at EQUAL -1 OR NOT out STREQUAL "")
    message(FATAL_ERROR "awk ${ARGN} a.tsv ${second}: exit ${status}, stdout '${out}'\n  stderr: '${err}'\n  want it to contain: '${want}'")
  endif()
endfunction()

expect_failure("missing.tsv:4: user u4 is not in" "${WORK}/missing.tsv")
expect_failure("twice.tsv:3: user u1 appears twice" "${WORK}/twice.tsv")
expect_failure("bad.tsv:3: expected user, valid_rank, test_rank" "${WORK}/bad.tsv")
expect_failure("not an `euler eval --ranks` table" "${SCRIPT}")
expect_failure("give two rank files" "")
expect_failure("metric must be ndcg, hr or mrr, got 'auc'" "${WORK}/b.tsv" -v metric=auc)
expect_failure("target must be test or valid" "${WORK}/b.tsv" -v target=train)
expect_failure("k must be a positive integer" "${WORK}/b.tsv" -v k=0)

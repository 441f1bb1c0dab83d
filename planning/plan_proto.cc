#include "planning/plan_proto.h"

namespace ftd::planning {

// One list of the scalar fields, so the two directions cannot drift apart.
#define FTD_PLAN_SCALARS(X)                                                                        \
  X(ram_bytes)                                                                                     \
  X(page_size)                                                                                     \
  X(zero_page_fraction)                                                                            \
  X(sample_s)                                                                                      \
  X(sampled_epoch_ms) X(checkpoints_per_sec) X(dirty_pages_per_s) X(stop_ms) X(find_ms) X(copy_ms) \
      X(devstate_ms) X(resume_ms) X(devstate_bytes) X(compression_ratio) X(ship_fixed_ms)          \
          X(ship_ms_per_page) X(commit_p50_ms) X(commit_p99_ms) X(link_bytes_per_s) X(link_source) \
              X(qemu_start_ms) X(digest_ms_per_page) X(seed_ms_per_page) X(needs_seed)

v1::PlanInputs to_proto(const PlanInputs& in) {
  v1::PlanInputs p;
#define FTD_SET(f) p.set_##f(in.f);
  FTD_PLAN_SCALARS(FTD_SET)
#undef FTD_SET
  for (const auto& s : in.pauses) {
    auto* q = p.add_pauses();
    q->set_fixed_ms(s.fixed_ms);
    q->set_copy_ms(s.copy_ms);
    q->set_pages(s.pages);
  }
  return p;
}

PlanInputs from_proto(const v1::PlanInputs& p) {
  PlanInputs in;
#define FTD_GET(f) in.f = p.f();
  FTD_PLAN_SCALARS(FTD_GET)
#undef FTD_GET
  for (const auto& q : p.pauses())
    in.pauses.push_back({.fixed_ms = q.fixed_ms(), .copy_ms = q.copy_ms(), .pages = q.pages()});
  return in;
}

}  // namespace ftd::planning

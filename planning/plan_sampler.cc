#include "planning/plan_sampler.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "checkpoint/page_digests.h"
#include "common/mapped_region.h"
#include "common/unique_fd.h"

namespace ftd::planning {
namespace {

double ms(uint64_t us) { return static_cast<double>(us) / 1000.0; }

// Least-squares line y = a + b x; b = 0 when x does not vary.
std::pair<double, double> fit_line(const std::vector<double>& x, const std::vector<double>& y) {
  const auto n = static_cast<double>(x.size());
  if (x.empty()) return {0, 0};
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  const double var = sxx - sx * sx / n;
  if (var <= 1e-9 * std::max(1.0, sxx)) return {sy / n, 0};
  double b = (sxy - sx * sy / n) / var;
  b = std::max(0.0, b);  // noise must not make bigger checkpoints cheaper
  return {(sy - b * sx) / n, b};
}

}  // namespace

double zero_page_fraction(std::span<const std::byte> ram, size_t page_size) {
  if (ram.empty() || page_size == 0) return 0;
  static constexpr std::byte kZeros[65536] = {};
  size_t pages = ram.size() / page_size, zero = 0;
  for (size_t i = 0; i < pages; ++i) {
    const std::byte* p = ram.data() + i * page_size;
    bool all_zero = true;
    for (size_t off = 0; off < page_size && all_zero; off += sizeof kZeros)
      all_zero = std::memcmp(p + off, kZeros, std::min(sizeof kZeros, page_size - off)) == 0;
    zero += all_zero;
  }
  return static_cast<double>(zero) / static_cast<double>(pages);
}

double digest_ms_per_page(std::span<const std::byte> ram, size_t page_size) {
  const size_t pages = page_size ? ram.size() / page_size : 0;
  if (pages == 0) return 0;
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t fold = 0;
  for (size_t i = 0; i < pages; ++i) fold ^= digest_page(ram.subspan(i * page_size, page_size)).low;
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  [[maybe_unused]] volatile uint64_t keep = fold;  // the digests must be computed
  return ms / static_cast<double>(pages);
}

Result<double> seed_ms_per_page(std::span<const std::byte> ram, size_t page_size,
                                size_t max_bytes) {
  const size_t bytes = std::min(ram.size(), max_bytes) / page_size * page_size;
  if (bytes == 0) return 0.0;
  // memfd pages are shmem pages, as the replica image's on tmpfs: the same
  // first-touch allocation the seed pays.
  UniqueFd fd(::memfd_create("ftd-plan-seed", MFD_CLOEXEC));
  if (!fd) return errno_error("memfd_create for the seed sample");
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0)
    return errno_error("size the seed sample");
  FTD_ASSIGN_OR_RETURN(MappedRegion sample, MappedRegion::map_fd(fd.get(), bytes, true));
  const auto t0 = std::chrono::steady_clock::now();
  std::memcpy(sample.data(), ram.data(), bytes);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return ms / static_cast<double>(bytes / page_size);
}

Result<PlanInputs> summarise(const PlanSamples& s, double window_s, double epoch_ms,
                             uint64_t ram_bytes, uint32_t page_size, const SampleOptions& options) {
  if (s.pauses.size() < 3 || s.commit_us.size() < 3)
    return make_error(ErrorCode::kFailedPrecondition,
                      "plan needs protection running: {} checkpoints taken and {} acknowledged in "
                      "the {:.1f} s sample (need 3 of each); protect the VM first",
                      s.pauses.size(), s.commit_us.size(), window_s);
  PlanInputs in;
  in.ram_bytes = ram_bytes;
  in.page_size = page_size;
  in.sample_s = window_s;
  in.sampled_epoch_ms = epoch_ms;
  in.checkpoints_per_sec = static_cast<double>(s.pauses.size()) / window_s;
  double pages = 0, devstate_bytes = 0;
  for (const auto& p : s.pauses) {
    const double copy = ms(p.copy_us);
    in.pauses.push_back({.fixed_ms = ms(p.total_us) - copy,
                         .copy_ms = copy,
                         .pages = static_cast<double>(p.dirty_pages)});
    pages += p.dirty_pages;
    in.stop_ms += ms(p.stop_us);
    in.find_ms += ms(p.dirty_us);
    in.copy_ms += copy;
    in.devstate_ms += ms(p.devstate_us);
    in.resume_ms += ms(p.resume_us);
    devstate_bytes += static_cast<double>(p.devstate_bytes);
  }
  const auto n = static_cast<double>(s.pauses.size());
  in.stop_ms /= n;
  in.find_ms /= n;
  in.copy_ms /= n;
  in.devstate_ms /= n;
  in.resume_ms /= n;
  in.devstate_bytes = devstate_bytes / n;
  in.dirty_pages_per_s = pages / window_s;

  // Shipping: time per checkpoint against its dirty pages (raw bytes minus
  // the device state), and the compression ratio over the window.
  std::vector<double> x, y;
  double raw = 0, encoded = 0, ship_s = 0;
  for (const auto& sh : s.ships) {
    x.push_back(std::max(0.0, (static_cast<double>(sh.raw_bytes) - in.devstate_bytes) / page_size));
    y.push_back(ms(sh.ship_us));
    raw += static_cast<double>(sh.raw_bytes);
    encoded += static_cast<double>(sh.encoded_bytes);
    ship_s += static_cast<double>(sh.ship_us) / 1e6;
  }
  std::tie(in.ship_fixed_ms, in.ship_ms_per_page) = fit_line(x, y);
  in.compression_ratio = encoded > 0 ? raw / encoded : 1;
  std::vector<double> commits;
  for (uint64_t c : s.commit_us) commits.push_back(ms(c));
  in.commit_p50_ms = percentile_of(commits, 50);
  in.commit_p99_ms = percentile_of(commits, 99);

  if (options.link_mbps > 0) {
    in.link_bytes_per_s = options.link_mbps * 1e6 / 8;
    in.link_source = fmt::format("configured {:.0f} Mbit/s", options.link_mbps);
  } else {
    // What the shipper pushed while busy: encode + send of every checkpoint.
    // A lower bound on the link when ftd is CPU-bound, not a link test.
    in.link_bytes_per_s = ship_s > 0 ? encoded / ship_s : 0;
    in.link_source =
        fmt::format("measured: shipper {:.1f} MB in {:.2f} s busy", encoded / 1e6, ship_s);
  }
  return in;
}

Result<PlanInputs> sample_plan_inputs(const CheckpointPipeline& pipeline,
                                      std::span<const std::byte> ram,
                                      const SampleOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(options.window);
  const double window_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const uint32_t page_size = 4096;
  FTD_ASSIGN_OR_RETURN(PlanInputs in,
                       summarise(pipeline.plan_samples_since(t0), window_s,
                                 static_cast<double>(pipeline.config().epochs.max.count()),
                                 ram.size(), page_size, options));
  // Read while the guest runs: a racy count, good enough for an estimate.
  in.zero_page_fraction = zero_page_fraction(ram, page_size);
  // The turnaround's per-page costs, measured now, under this host's load.
  in.digest_ms_per_page = digest_ms_per_page(ram, page_size);
  FTD_ASSIGN_OR_RETURN(in.seed_ms_per_page, seed_ms_per_page(ram, page_size, kSeedSampleBytes));
  in.qemu_start_ms = options.qemu_start_ms;
  in.needs_seed = options.needs_seed;
  return in;
}

}  // namespace ftd::planning

// framework/dist/data_parallel.cpp — heed::dist::DataParallel: bucketed gradient averaging overlapped with
// backward, driven by the tape's grad-ready hooks (heed/dist.hpp, heed/autograd.hpp).
//
// Per backward pass: each parameter's hook copies its final gradient (zeros when it has none) and a
// "had a gradient" flag into its bucket's send buffer. When a bucket's last parameter is in, the bucket is
// ready; ready buckets are sent strictly in bucket order (the same order on every rank, whatever order
// the hooks came in), and every hook polls the buckets in flight so that MPI moves data while backward
// computes. When the last parameter is in, the remaining buckets are sent and waited for, and the
// averages written into the parameters' .grad().
#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <set>

#include "dist/backend.hpp"
#include "heed/autograd.hpp"
#include "heed/dist.hpp"
#include "heed/nn/module.hpp"

namespace heed::dist {
namespace {

std::mutex registry_mutex;
std::set<const nn::Module*>& registry() {
  static std::set<const nn::Module*> modules;
  return modules;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string describe_state(const nn::NamedTensors& state, const char* kind) {
  std::string out;
  for (const auto& [name, t] : state)
    out += fmt::format("{} '{}' {} {}\n", kind, name, shape_str(t.shape()), dtype_name(t.dtype()));
  return out;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n') lines.push_back(text.substr(start, i - start)), start = i + 1;
  return lines;
}

}  // namespace

struct DataParallel::Impl {
  struct Param {
    Tensor tensor;
    std::string name;
    int64_t numel = 0;
    std::size_t bucket = 0;
    int64_t offset = 0;  // in the bucket's gradient area
    std::size_t slot = 0;  // index in the bucket (its flag's position after the gradients)
  };
  enum class BucketState { Filling, Ready, Sent, Done };
  struct Bucket {
    DType dtype = DType::Float32;
    std::vector<std::size_t> params;
    int64_t numel = 0;     // gradient elements; the buffers hold numel + params.size() (the flags)
    Tensor send, gathered;  // ordered: every rank's send buffer, rank after rank
    std::size_t waiting = 0;  // parameters not yet final in this pass
    BucketState state = BucketState::Filling;
    detail::Request request;
    int64_t length() const { return numel + static_cast<int64_t>(params.size()); }
  };

  nn::Module* module = nullptr;
  DataParallelOptions options;
  int world = 1;
  std::vector<Param> params;
  std::vector<Bucket> buckets;
  std::vector<uint64_t> hook_ids;
  int no_sync_depth = 0;
  Stats stats;
  // The pass in progress.
  std::vector<char> ready;
  std::size_t ready_count = 0;
  bool involved = false;  // some parameter took part in this pass's graph
  std::size_t next_send = 0;

  void start_pass() {
    std::fill(ready.begin(), ready.end(), 0);
    ready_count = 0;
    involved = false;
    next_send = 0;
    for (Bucket& b : buckets) {
      b.waiting = b.params.size();
      b.state = BucketState::Filling;
    }
  }

  template <class T>
  void pack(const Param& p, Bucket& b) {
    T* slot = b.send.data<T>() + p.offset;
    const Tensor grad = p.tensor.grad();
    T* flag = b.send.data<T>() + b.numel + static_cast<int64_t>(p.slot);
    if (grad.defined()) {
      const Tensor g = grad.is_contiguous() ? grad : grad.contiguous();
      std::memcpy(slot, g.data<T>(), static_cast<std::size_t>(p.numel) * sizeof(T));
      *flag = T(1);
    } else {
      std::fill(slot, slot + p.numel, T(0));
      *flag = T(0);
    }
  }

  // The average of every rank's values of one parameter: ordered, the sum in rank order then / P;
  // otherwise MPI's sum (in the send buffer) / P. Written into .grad() (made when only other ranks had one).
  template <class T>
  void unpack(const Param& p, const Bucket& b) {
    const int64_t len = b.length();
    const T* base = options.ordered() ? b.gathered.data<T>() : b.send.data<T>();
    const int ranks = options.ordered() ? world : 1;
    T any = 0;
    for (int r = 0; r < ranks; ++r) any += base[r * len + b.numel + static_cast<int64_t>(p.slot)];
    Tensor grad = p.tensor.grad();
    if (!grad.defined() || !grad.is_contiguous()) {
      if (any == T(0) && !grad.defined()) return;  // no rank had a gradient: none here either
      grad = make_tensor(p.tensor.shape(), p.tensor.dtype());
      p.tensor.impl()->grad = grad.impl_ptr();
    }
    T* out = grad.data<T>();
    const T divisor = static_cast<T>(world);
    const T* g0 = base + p.offset;
    for (int64_t i = 0; i < p.numel; ++i) {
      T s = g0[i];
      for (int r = 1; r < ranks; ++r) s += g0[r * len + i];
      out[i] = s / divisor;
    }
  }

  void send(Bucket& b) {
    const int64_t n = b.length();
    b.request = options.ordered() ? detail::Request::iallgather(detail::raw_data(b.send), n,
                                                                b.dtype, detail::raw_data(b.gathered))
                                  : detail::Request::iallreduce_sum(detail::raw_data(b.send), n, b.dtype);
    b.state = BucketState::Sent;
    ++stats.buckets_sent;
    stats.megabytes_sent += static_cast<double>(n) * static_cast<double>(dtype_size(b.dtype)) * 1e-6;
  }

  void finish(Bucket& b) {
    for (std::size_t i : b.params) {
      if (b.dtype == DType::Float32) {
        unpack<float>(params[i], b);
      } else {
        unpack<double>(params[i], b);
      }
    }
    b.state = BucketState::Done;
  }

  void send_ready_buckets() {
    while (next_send < buckets.size() && buckets[next_send].state == BucketState::Ready) send(buckets[next_send++]);
  }

  void poll() {
    for (std::size_t i = 0; i < next_send; ++i)
      if (buckets[i].state == BucketState::Sent && buckets[i].request.test()) finish(buckets[i]);
  }

  void on_ready(std::size_t index, bool in_graph) {
    if (no_sync_depth > 0) return;
    const auto start = std::chrono::steady_clock::now();
    Param& p = params[index];
    HEED_CHECK(!ready[index],
               "DataParallel: parameter '{}' became final twice in one backward pass (rank {}): the previous backward "
               "pass did not finish (did it throw?)",
               p.name, runtime_rank());
    ready[index] = 1;
    ++ready_count;
    involved = involved || in_graph;
    Bucket& b = buckets[p.bucket];
    if (b.dtype == DType::Float32) {
      pack<float>(p, b);
    } else {
      pack<double>(p, b);
    }
    if (--b.waiting == 0) b.state = BucketState::Ready;
    // Nothing is sent before some parameter took part in the graph: a backward pass that does not involve
    // the module (parameters only final at its end) averages nothing.
    if (involved) send_ready_buckets();
    poll();
    if (ready_count == params.size()) {
      if (involved) {
        send_ready_buckets();
        for (Bucket& bucket : buckets) {
          if (bucket.state != BucketState::Sent) continue;
          const auto wait_start = std::chrono::steady_clock::now();
          bucket.request.wait();
          stats.wait_seconds += seconds_since(wait_start);
          finish(bucket);
        }
        ++stats.syncs;
      }
      start_pass();
    }
    stats.comm_seconds += seconds_since(start);
  }

  static int runtime_rank() { return detail::runtime().rank; }
};

DataParallel::DataParallel(nn::Module& module, DataParallelOptions options) : impl_(std::make_unique<Impl>()) {
  detail::require_init("DataParallel");
  HEED_CHECK(options.bucket_mb() > 0 && options.first_bucket_mb() > 0,
             "DataParallel: bucket_mb ({}) and first_bucket_mb ({}) must be positive", options.bucket_mb(),
             options.first_bucket_mb());
  Impl& im = *impl_;
  im.module = &module;
  im.options = options;
  const detail::Runtime& rt = detail::runtime();
  im.world = rt.size;

  // The same parameters and buffers on every rank, then rank 0's values everywhere.
  const nn::NamedTensors named_params = module.named_parameters(), named_buffers = module.named_buffers();
  if (im.world > 1) {
    const std::string mine = describe_state(named_params, "parameter") + describe_state(named_buffers, "buffer");
    const std::vector<std::string> all = detail::allgather_strings(mine);
    const std::vector<std::string> first = split_lines(all[0]);
    for (int r = 1; r < im.world; ++r) {
      if (all[r] == all[0]) continue;
      const std::vector<std::string> other = split_lines(all[r]);
      std::size_t i = 0;
      while (i < first.size() && i < other.size() && first[i] == other[i]) ++i;
      throw Error(fmt::format(
          "DataParallel: the ranks' modules differ (seen from rank {}): rank 0 has {} where rank {} has {} (build the "
          "same model on every rank)",
          rt.rank, i < first.size() ? first[i] : "nothing more", r, i < other.size() ? other[i] : "nothing more"));
    }
    NoGradGuard no_grad;
    for (const nn::NamedTensors* list : {&named_params, &named_buffers})
      for (const auto& [name, t] : *list) {
        const Tensor buffer = detail::dense(t);
        detail::raw_bcast(detail::raw_data(buffer), static_cast<std::size_t>(buffer.numel()) * dtype_size(buffer.dtype()),
                          0);
        detail::write_back(t, buffer);
      }
  }
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    registry().insert(&module);
  }
  if (im.world == 1) return;  // one process: nothing to average, no hooks

  // Trainable parameters in reverse registration order (tied weights once), into buckets per dtype.
  std::vector<const TensorImpl*> seen;
  for (auto it = named_params.rbegin(); it != named_params.rend(); ++it) {
    const Tensor& t = it->second;
    if (!t.requires_grad() || std::find(seen.begin(), seen.end(), t.impl()) != seen.end()) continue;
    HEED_CHECK(is_floating(t.dtype()), "DataParallel: parameter '{}' requires grad but is {}", it->first,
               dtype_name(t.dtype()));
    seen.push_back(t.impl());
    Impl::Param p;
    p.tensor = t;
    p.name = it->first;
    p.numel = t.numel();
    im.params.push_back(p);
  }
  std::vector<std::ptrdiff_t> open_bucket(2, -1);  // per dtype (Float32, Float64): the bucket being filled
  for (std::size_t i = 0; i < im.params.size(); ++i) {
    Impl::Param& p = im.params[i];
    const std::size_t kind = p.tensor.dtype() == DType::Float32 ? 0 : 1;
    const double bytes = static_cast<double>(p.numel) * static_cast<double>(dtype_size(p.tensor.dtype()));
    std::ptrdiff_t b = open_bucket[kind];
    if (b >= 0) {
      const Impl::Bucket& bucket = im.buckets[static_cast<std::size_t>(b)];
      const double cap = (b == 0 ? options.first_bucket_mb() : options.bucket_mb()) * 1024.0 * 1024.0;
      const double used = static_cast<double>(bucket.numel) * static_cast<double>(dtype_size(bucket.dtype));
      if (used + bytes > cap) b = -1;
    }
    if (b < 0) {
      im.buckets.emplace_back();
      im.buckets.back().dtype = p.tensor.dtype();
      b = static_cast<std::ptrdiff_t>(im.buckets.size() - 1);
      open_bucket[kind] = b;
    }
    Impl::Bucket& bucket = im.buckets[static_cast<std::size_t>(b)];
    p.bucket = static_cast<std::size_t>(b);
    p.offset = bucket.numel;
    p.slot = bucket.params.size();
    bucket.params.push_back(i);
    bucket.numel += p.numel;
  }
  for (Impl::Bucket& b : im.buckets) {
    b.send = make_tensor({b.length()}, b.dtype);
    if (options.ordered()) b.gathered = make_tensor({im.world * b.length()}, b.dtype);
  }
  im.ready.assign(im.params.size(), 0);
  im.start_pass();
  Impl* self = impl_.get();
  for (std::size_t i = 0; i < im.params.size(); ++i)
    im.hook_ids.push_back(register_grad_ready_hook(
        im.params[i].tensor, [self, i](const Tensor&, bool in_graph) { self->on_ready(i, in_graph); }));
}

DataParallel::~DataParallel() {
  for (uint64_t id : impl_->hook_ids) remove_grad_ready_hook(id);
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    registry().erase(impl_->module);
  }
  bool pending = false;
  for (Impl::Bucket& b : impl_->buckets) pending = pending || b.request.pending();
  if (!pending) return;
  if (std::uncaught_exceptions() > 0) {
    detail::keep_until_exit(std::shared_ptr<Impl>(std::move(impl_)));  // MPI may still write into the buffers
    return;
  }
  for (Impl::Bucket& b : impl_->buckets) b.request.wait();
}

nn::Module& DataParallel::module() const { return *impl_->module; }

DataParallel::NoSync::NoSync(DataParallel* owner) : owner_(owner) { ++owner_->impl_->no_sync_depth; }
DataParallel::NoSync::~NoSync() {
  if (owner_) --owner_->impl_->no_sync_depth;
}
DataParallel::NoSync::NoSync(NoSync&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
DataParallel::NoSync DataParallel::no_sync() { return NoSync(this); }

void DataParallel::broadcast_buffers() {
  detail::require_init("DataParallel::broadcast_buffers");
  NoGradGuard no_grad;
  for (const auto& [name, t] : impl_->module->named_buffers()) broadcast_(t, 0);
}

std::vector<std::vector<std::string>> DataParallel::bucket_names() const {
  std::vector<std::vector<std::string>> out;
  for (const Impl::Bucket& b : impl_->buckets) {
    out.emplace_back();
    for (std::size_t i : b.params) out.back().push_back(impl_->params[i].name);
  }
  return out;
}

const DataParallel::Stats& DataParallel::stats() const { return impl_->stats; }
void DataParallel::reset_stats() { impl_->stats = Stats(); }

bool has_data_parallel(const nn::Module& module) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  return registry().count(&module) > 0;
}

}  // namespace heed::dist

//! An open device: its queue, buffers, and the compiled pipelines (each kernel compiled once, on first use).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cria_gguf::GgmlType;
use wgpu::util::DeviceExt;

use crate::adapters::{self, AdapterSummary, DeviceChoice};
use crate::pool::{BufferPool, Lease};
use crate::{GpuError, Step};

/// One GPU: device, queue and pipeline cache. Ops are recorded through [`Gpu::step`].
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    summary: AdapterSummary,
    pipelines: Mutex<HashMap<String, wgpu::ComputePipeline>>,
    /// Activations, scratch and kernel parameters, kept across steps.
    pool: Arc<BufferPool>,
    /// Reductions use subgroup operations (the adapter has them and they were not turned off).
    subgroups: bool,
    /// Bound where a kernel's optional input is absent (a binding must always hold a buffer).
    pub(crate) dummy: wgpu::Buffer,
}

/// A buffer on the device: f32s, u32s or raw weight bytes, padded to whole 4-byte words.
#[derive(Clone, Debug)]
pub struct GpuBuffer {
    pub(crate) buf: wgpu::Buffer,
    /// Length in 4-byte words.
    words: usize,
    /// For a buffer from the pool: the last clone's drop gives it back.
    _lease: Option<Arc<Lease>>,
}

impl GpuBuffer {
    /// Length in 4-byte words (f32s).
    pub fn len(&self) -> usize {
        self.words
    }

    pub fn is_empty(&self) -> bool {
        self.words == 0
    }
}

/// A weight matrix uploaded once: `rows` rows of `cols` elements of `ty`, in GGUF's row-major byte layout, in
/// parts of `part_rows` rows where one buffer would exceed the device's binding limit (a large vocabulary's
/// embedding matrix on lavapipe's 128 MiB).
#[derive(Clone, Debug)]
pub struct GpuMatrix {
    pub(crate) parts: Vec<GpuBuffer>,
    pub(crate) part_rows: usize,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub(crate) row_bytes: usize,
}

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// How [`Gpu::open_with`] opens a device.
#[derive(Clone, Copy, Debug)]
pub struct GpuOptions {
    /// Use subgroup operations for reductions where the adapter has them (else workgroup memory).
    pub subgroups: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions { subgroups: true }
    }
}

impl Gpu {
    /// Opens the adapter `choice` names ([`DeviceChoice::Cpu`] is an error: the caller stays on the CPU), with
    /// subgroup reductions where it has them. No kernel needs `shader-f16`: f16 values (the KV cache, weight
    /// scales) travel packed in u32 words and are converted with `pack2x16float` / `unpack2x16float`.
    ///
    /// # Errors
    /// [`GpuError::NoAdapter`] when none matches, [`GpuError::Device`] when the device cannot be opened.
    pub fn open(choice: DeviceChoice) -> Result<Gpu, GpuError> {
        Self::open_with(choice, GpuOptions::default())
    }

    /// [`Gpu::open`] with `options` (tests force the fallbacks an adapter without the features would take).
    ///
    /// # Errors
    /// As [`Gpu::open`].
    pub fn open_with(choice: DeviceChoice, options: GpuOptions) -> Result<Gpu, GpuError> {
        if choice == DeviceChoice::Auto && !adapters::may_have_hardware_gpu() {
            return Err(GpuError::NoAdapter("no GPU device node".into()));
        }
        let instance = adapters::instance();
        let found = adapters::adapters(&instance);
        let summaries: Vec<_> = found
            .iter()
            .enumerate()
            .map(|(i, a)| adapters::summarize(i, a))
            .collect();
        let index = adapters::pick(choice, &summaries)?;
        let adapter = &found[index];
        let subgroups = options.subgroups && adapter.features().contains(wgpu::Features::SUBGROUP);
        let features = if subgroups {
            wgpu::Features::SUBGROUP
        } else {
            wgpu::Features::empty()
        };
        let desc = wgpu::DeviceDescriptor {
            label: Some("cria"),
            required_features: features,
            // The weights of a large vocabulary exceed the default 128 MiB binding: take what the adapter has.
            required_limits: adapter.limits(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dummy"),
            size: 16,
            usage: STORAGE,
            mapped_at_creation: false,
        });
        Ok(Gpu {
            device,
            queue,
            summary: summaries[index].clone(),
            pipelines: Mutex::new(HashMap::new()),
            pool: Arc::default(),
            subgroups,
            dummy,
        })
    }

    /// Whether reductions use subgroup operations.
    pub fn uses_subgroups(&self) -> bool {
        self.subgroups
    }

    /// Whether the device was opened with `shader-f16` (never: no kernel needs it).
    pub fn uses_shader_f16(&self) -> bool {
        self.device.features().contains(wgpu::Features::SHADER_F16)
    }

    /// The pipeline of a kernel with reductions (`kernels::with_reductions`), in this device's variant.
    pub(crate) fn reducing_pipeline(&self, name: &str, kernel: &str) -> wgpu::ComputePipeline {
        let sg = self.subgroups;
        let key = format!("{name}{}", if sg { "_subgroups" } else { "" });
        self.pipeline(&key, || crate::kernels::with_reductions(kernel, sg))
    }

    /// The adapter this device runs on.
    pub fn summary(&self) -> &AdapterSummary {
        &self.summary
    }

    fn check_size(&self, bytes: u64) -> Result<(), GpuError> {
        let limit = self.summary.max_binding;
        if bytes > limit {
            return Err(GpuError::TooLarge { bytes, limit });
        }
        Ok(())
    }

    /// Uploads `bytes`, zero-padded to whole words (and at least one word: empty bindings are invalid).
    ///
    /// # Errors
    /// [`GpuError::TooLarge`] past the device's binding limit.
    pub fn upload_bytes(&self, bytes: &[u8]) -> Result<GpuBuffer, GpuError> {
        let words = bytes.len().div_ceil(4).max(1);
        self.check_size(words as u64 * 4)?;
        let mut padded = bytes.to_vec();
        padded.resize(words * 4, 0);
        let buf = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: &padded,
                usage: STORAGE,
            });
        Ok(GpuBuffer {
            buf,
            words,
            _lease: None,
        })
    }

    /// Uploads f32s.
    ///
    /// # Errors
    /// As [`Gpu::upload_bytes`].
    pub fn upload_f32(&self, data: &[f32]) -> Result<GpuBuffer, GpuError> {
        self.upload_bytes(bytemuck::cast_slice(data))
    }

    /// Uploads u32s.
    ///
    /// # Errors
    /// As [`Gpu::upload_bytes`].
    pub fn upload_u32(&self, data: &[u32]) -> Result<GpuBuffer, GpuError> {
        self.upload_bytes(bytemuck::cast_slice(data))
    }

    /// A zeroed buffer of `words` f32s (or u32s), from the pool: one a dropped buffer of the same size class
    /// left is cleared and reused (a step's activations), else a new one is made.
    ///
    /// # Errors
    /// As [`Gpu::upload_bytes`].
    pub fn zeros(&self, words: usize) -> Result<GpuBuffer, GpuError> {
        let words = words.max(1);
        self.check_size(words as u64 * 4)?;
        let (buf, reused) = self.pooled(STORAGE, words);
        if reused {
            // Submitted now, so it lands before any later write or step that uses the buffer.
            let mut enc = self.device.create_command_encoder(&Default::default());
            enc.clear_buffer(&buf.buf, 0, None);
            self.queue.submit([enc.finish()]);
        }
        Ok(buf)
    }

    /// A buffer of at least `words` words with `usage` from the pool, and whether it was reused (its contents
    /// then are what its last user left; a new one is zeroed).
    pub(crate) fn pooled(&self, usage: wgpu::BufferUsages, words: usize) -> (GpuBuffer, bool) {
        let words = words.max(1);
        let bytes = words as u64 * 4;
        let limit = self.summary.max_binding;
        let (buf, lease, reused) = self.pool.take(&self.device, usage, (bytes, limit));
        let buf = GpuBuffer {
            buf,
            words,
            _lease: Some(lease),
        };
        (buf, reused)
    }

    /// Free buffers the pool holds for the next steps (diagnostics and tests).
    pub fn pooled_buffers(&self) -> usize {
        self.pool.free_buffers()
    }

    /// A scratch buffer of `words` words from the pool for a step's intermediate results (contents undefined).
    pub(crate) fn scratch(&self, words: usize) -> GpuBuffer {
        self.pooled(STORAGE, words).0
    }

    /// Uploads a weight matrix (`data`: its rows in GGUF's layout).
    ///
    /// # Errors
    /// [`GpuError::Unsupported`] for a format without kernels or rows that are not whole blocks,
    /// [`GpuError::TooLarge`] past the binding limit.
    pub fn upload_matrix(
        &self,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: &[u8],
    ) -> Result<GpuMatrix, GpuError> {
        let row_bytes = ty
            .row_bytes(cols)
            .filter(|_| crate::supports_format(ty))
            .ok_or(GpuError::Unsupported(ty))?;
        let len = row_bytes * rows;
        let bytes = data.get(..len).ok_or(GpuError::Unsupported(ty))?;
        let limit = usize::try_from(self.summary.max_binding).unwrap_or(usize::MAX);
        let part_rows = (limit / row_bytes.max(1)).clamp(1, rows.max(1));
        self.upload_matrix_parts((ty, row_bytes), rows, cols, bytes, part_rows)
    }

    /// [`Gpu::upload_matrix`] in parts of `part_rows` rows, whatever the device's limit (tests use it to cover
    /// the split path on any device).
    ///
    /// # Errors
    /// As [`Gpu::upload_matrix`].
    pub fn upload_matrix_in_parts(
        &self,
        ty: GgmlType,
        (rows, cols): (usize, usize),
        data: &[u8],
        part_rows: usize,
    ) -> Result<GpuMatrix, GpuError> {
        let row_bytes = ty
            .row_bytes(cols)
            .filter(|_| crate::supports_format(ty))
            .ok_or(GpuError::Unsupported(ty))?;
        let bytes = data
            .get(..row_bytes * rows)
            .ok_or(GpuError::Unsupported(ty))?;
        self.upload_matrix_parts((ty, row_bytes), rows, cols, bytes, part_rows.max(1))
    }

    fn upload_matrix_parts(
        &self,
        (ty, row_bytes): (GgmlType, usize),
        rows: usize,
        cols: usize,
        bytes: &[u8],
        part_rows: usize,
    ) -> Result<GpuMatrix, GpuError> {
        let parts = bytes
            .chunks(part_rows * row_bytes.max(1))
            .map(|part| self.upload_bytes(part))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GpuMatrix {
            parts,
            part_rows,
            ty,
            rows,
            cols,
            row_bytes,
        })
    }

    /// Writes f32s into the start of `dst` (queued before the next submitted step).
    pub fn write_f32(&self, dst: &GpuBuffer, data: &[f32]) {
        self.queue
            .write_buffer(&dst.buf, 0, bytemuck::cast_slice(data));
    }

    /// The first `n` f32s of `src`, after all submitted work.
    ///
    /// # Errors
    /// [`GpuError::Readback`] when mapping fails.
    pub fn read_f32(&self, src: &GpuBuffer, n: usize) -> Result<Vec<f32>, GpuError> {
        let size = (n.min(src.words) * 4) as u64;
        if size == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&src.buf, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        rx.recv()
            .map_err(|e| GpuError::Readback(e.to_string()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let out = bytemuck::cast_slice::<u8, f32>(&view).to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// A new step: ops recorded into one command encoder, submitted together by [`Step::submit`].
    pub fn step(&self) -> Step<'_> {
        Step::new(self)
    }

    /// The pipeline named `key`, compiled from `source()` on first use.
    pub(crate) fn pipeline(
        &self,
        key: &str,
        source: impl FnOnce() -> String,
    ) -> wgpu::ComputePipeline {
        let mut cache = self
            .pipelines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = cache.get(key) {
            return p.clone();
        }
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(key),
                source: wgpu::ShaderSource::Wgsl(source().into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(key),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        cache.insert(key.to_string(), pipeline.clone());
        pipeline
    }
}

//! Which adapters wgpu sees, and which one a `--device` choice opens.

use std::fmt;

use crate::GpuError;

/// What `--device` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first real GPU (discrete, integrated or virtual), never a software adapter; the CPU when none.
    Auto,
    /// The CPU kernels.
    Cpu,
    /// Adapter `N` of [`list_adapters`] (`gpu` alone: the first real GPU, else a software one).
    Gpu(Option<usize>),
}

impl std::str::FromStr for DeviceChoice {
    type Err = GpuError;
    fn from_str(s: &str) -> Result<Self, GpuError> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu(None)),
            _ => s
                .strip_prefix("gpu:")
                .and_then(|n| n.parse().ok())
                .map(|n| Self::Gpu(Some(n)))
                .ok_or_else(|| GpuError::BadChoice(s.to_string())),
        }
    }
}

/// One adapter as `cria devices` lists it.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub index: usize,
    pub name: String,
    /// wgpu's device type: DiscreteGpu, IntegratedGpu, VirtualGpu, Cpu, Other.
    pub kind: String,
    pub backend: String,
    pub driver: String,
    /// Runs on the CPU (lavapipe, WARP, SwiftShader): correct, slow; `auto` skips it.
    pub software: bool,
    pub f16: bool,
    pub subgroups: bool,
    /// Largest storage buffer one kernel may bind, in bytes.
    pub max_binding: u64,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes = |b: bool| if b { "yes" } else { "no" };
        write!(
            f,
            "gpu:{}  {} ({}, {}, driver {}){}  f16: {}  subgroups: {}  max binding: {} MiB",
            self.index,
            self.name,
            self.kind,
            self.backend,
            self.driver,
            if self.software { " [software]" } else { "" },
            yes(self.f16),
            yes(self.subgroups),
            self.max_binding >> 20,
        )
    }
}

pub(crate) fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle())
}

pub(crate) fn adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

pub(crate) fn summarize(index: usize, a: &wgpu::Adapter) -> AdapterSummary {
    let info = a.get_info();
    let features = a.features();
    AdapterSummary {
        index,
        name: info.name,
        kind: format!("{:?}", info.device_type),
        backend: format!("{:?}", info.backend),
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_string(),
        software: info.device_type == wgpu::DeviceType::Cpu,
        f16: features.contains(wgpu::Features::SHADER_F16),
        subgroups: features.contains(wgpu::Features::SUBGROUP),
        max_binding: a.limits().max_storage_buffer_binding_size,
    }
}

/// Every adapter wgpu finds (none where there is no Vulkan loader or driver).
pub fn list_adapters() -> Vec<AdapterSummary> {
    adapters(&instance())
        .iter()
        .enumerate()
        .map(|(i, a)| summarize(i, a))
        .collect()
}

/// Whether this machine may have a hardware GPU: on Linux, only where a GPU device node exists (a DRM render
/// node `/dev/dri/renderD*`, NVIDIA's `/dev/nvidiactl`, WSL's `/dev/dxg`); elsewhere always. `auto` checks it
/// before asking Vulkan, so a machine without a GPU never loads the drivers (nor hears Mesa's device-select
/// layer complain about `XDG_RUNTIME_DIR` on a headless machine).
pub(crate) fn may_have_hardware_gpu() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let render_node = std::fs::read_dir("/dev/dri").is_ok_and(|dir| {
        dir.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    });
    render_node
        || ["/dev/nvidiactl", "/dev/dxg"]
            .iter()
            .any(|p| std::path::Path::new(p).exists())
}

/// The index of the adapter `choice` names among `found`, or why there is none.
pub(crate) fn pick(choice: DeviceChoice, found: &[AdapterSummary]) -> Result<usize, GpuError> {
    let real = found.iter().find(|a| !a.software).map(|a| a.index);
    match choice {
        DeviceChoice::Cpu => Err(GpuError::NoAdapter("the CPU was asked for".into())),
        DeviceChoice::Auto => real.ok_or_else(|| {
            GpuError::NoAdapter(format!("{} adapter(s), none a hardware GPU", found.len()))
        }),
        DeviceChoice::Gpu(None) => real
            .or(found.first().map(|a| a.index))
            .ok_or_else(|| GpuError::NoAdapter("no Vulkan/Metal/DX12 adapter found".into())),
        DeviceChoice::Gpu(Some(n)) => found.get(n).map(|a| a.index).ok_or_else(|| {
            GpuError::NoAdapter(format!("gpu:{n} asked for, {} found", found.len()))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(index: usize, software: bool) -> AdapterSummary {
        AdapterSummary {
            index,
            name: format!("a{index}"),
            kind: String::new(),
            backend: String::new(),
            driver: String::new(),
            software,
            f16: false,
            subgroups: false,
            max_binding: 0,
        }
    }

    #[test]
    fn device_choice_parses_every_form_and_rejects_others() {
        assert_eq!(
            "auto".parse::<DeviceChoice>().ok(),
            Some(DeviceChoice::Auto)
        );
        assert_eq!("cpu".parse::<DeviceChoice>().ok(), Some(DeviceChoice::Cpu));
        assert_eq!(
            "gpu".parse::<DeviceChoice>().ok(),
            Some(DeviceChoice::Gpu(None))
        );
        assert_eq!(
            "gpu:2".parse::<DeviceChoice>().ok(),
            Some(DeviceChoice::Gpu(Some(2)))
        );
        assert!("gpu:x".parse::<DeviceChoice>().is_err());
        assert!("cuda".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn auto_never_picks_a_software_adapter() {
        let soft = [adapter(0, true)];
        assert!(pick(DeviceChoice::Auto, &soft).is_err());
        assert_eq!(pick(DeviceChoice::Gpu(None), &soft).ok(), Some(0));
        let both = [adapter(0, true), adapter(1, false)];
        assert_eq!(pick(DeviceChoice::Auto, &both).ok(), Some(1));
        assert_eq!(pick(DeviceChoice::Gpu(None), &both).ok(), Some(1));
        assert_eq!(pick(DeviceChoice::Gpu(Some(0)), &both).ok(), Some(0));
        assert!(pick(DeviceChoice::Gpu(Some(2)), &both).is_err());
        assert!(pick(DeviceChoice::Cpu, &both).is_err());
    }
}

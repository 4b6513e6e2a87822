// The registered samplers: one line each. A sampler's spec is defined next to its function.
#include "scorediff/samplers/registry.hpp"

namespace scorediff {

SamplerSpec ald_spec();
SamplerSpec langevin_spec();
SamplerSpec em_spec();
SamplerSpec reverse_diffusion_spec();
SamplerSpec ancestral_spec();
SamplerSpec langevin_corrector_spec();
SamplerSpec pc_spec();
SamplerSpec ddim_spec();
SamplerSpec ode_euler_spec();
SamplerSpec ode_heun_spec();
SamplerSpec ode_rk45_spec();
SamplerSpec edm_spec();
SamplerSpec dpm_solver_spec();
SamplerSpec ipndm_spec();
SamplerSpec dpm_solver_3m_spec();
SamplerSpec dpm_solver_2m_sde_spec();
SamplerSpec unipc_spec();
SamplerSpec consistency_spec();

void register_builtins(Registry<SamplerSpec>& r) {
  for (SamplerSpec (*make)() : {ald_spec, langevin_spec, em_spec, reverse_diffusion_spec, ancestral_spec,
                                langevin_corrector_spec, pc_spec, ddim_spec, ode_euler_spec, ode_heun_spec,
                                ode_rk45_spec, edm_spec, dpm_solver_spec, ipndm_spec, dpm_solver_3m_spec,
                                dpm_solver_2m_sde_spec, unipc_spec, consistency_spec}) {
    SamplerSpec spec = make();
    r.add(spec.name, spec, spec.help);
  }
}

}  // namespace scorediff

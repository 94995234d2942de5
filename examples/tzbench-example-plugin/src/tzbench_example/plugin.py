"""Registers ESPCN with tzbench."""

from tzbench import SRModelSpec, hookimpl
from tzbench_example.params import ESPCNParams


@hookimpl
def register_sr_models() -> list[SRModelSpec]:
    return [
        SRModelSpec(
            name="espcn",
            target="tzbench_example.espcn:ESPCN",
            params=ESPCNParams,
            summary="ESPCN: efficient sub-pixel convolution (example third-party plugin)",
            paper="Shi et al., CVPR 2016",
            default_loss="l2",
            in_channels=3,
        )
    ]

"""Encoder/decoder builders (METHODS §1)."""
import pytest

from zoo import networks


def test_conv64_dlib_parameter_counts_match_disentanglement_lib():
    encoder = networks.build_encoder("conv64_dlib", (64, 64, 1))
    decoder = networks.build_decoder("conv64_dlib", 10, (64, 64, 1))
    # The encoder count in METHODS includes the posterior head Dense(256 → 2·10).
    assert encoder.count_params() + (256 * 20 + 20) == 309_204
    assert decoder.count_params() == 381_313


@pytest.mark.parametrize("name", sorted(networks.NETWORKS))
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(name, channels):
    encoder = networks.build_encoder(name, (64, 64, channels))
    decoder = networks.build_decoder(name, 7, (64, 64, channels))
    assert encoder.output_shape == (None, 256)
    assert decoder.output_shape == (None, 64, 64, channels)


def test_conv64_uses_4x4_kernels_throughout():
    encoder = networks.build_encoder("conv64", (64, 64, 1))
    assert [layer.kernel_size for layer in encoder.layers[:4]] == [(4, 4)] * 4


def test_unknown_network_and_wrong_image_size_are_refused():
    with pytest.raises(ValueError, match="Unknown network 'resnet'"):
        networks.build_encoder("resnet", (64, 64, 1))
    with pytest.raises(ValueError, match="needs images of shape"):
        networks.build_encoder("conv64", (32, 32, 1))

"""Encoder/decoder builders (docs/methods.md §1)."""
import numpy as np
import pytest

from zoo import networks


def test_conv64_dlib_parameter_counts_match_disentanglement_lib():
    encoder = networks.build_encoder("conv64_dlib", (64, 64, 1))
    decoder = networks.build_decoder("conv64_dlib", 10, (64, 64, 1))
    # The encoder count in docs/methods.md §1 includes the posterior head Dense(256 → 2·10).
    assert encoder.count_params() + (256 * 20 + 20) == 309_204
    assert decoder.count_params() == 381_313


@pytest.mark.parametrize("name", ["conv64", "conv64_dlib"])
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


# Networks for other observation shapes (issue 6): each NETWORKS entry declares what it accepts.
# name → (observation shape, encoder feature width)
OTHER_NETWORKS = {
    "mlp": ((2,), 100),
    "tcvae_mlp": ((64, 64, 1), 1200),
    "dcgan32": ((32, 32, 3), 4096),
    "conv28": ((28, 28, 1), 256),
}


@pytest.mark.parametrize("name", sorted(OTHER_NETWORKS))
def test_other_network_shapes(name):
    import numpy as np

    shape, features = OTHER_NETWORKS[name]
    encoder = networks.build_encoder(name, shape)
    decoder = networks.build_decoder(name, 5, shape)
    assert encoder.output_shape == (None, features)
    assert decoder.output_shape == (None,) + shape
    x = np.random.default_rng(0).random((3,) + shape).astype("float32")
    assert tuple(encoder(x).shape) == (3, features)
    assert tuple(decoder(np.zeros((3, 5), "float32")).shape) == (3,) + shape


def test_every_network_builds_for_its_declared_example_shape():
    for name in networks.NETWORKS:
        shape = networks.accepted_shapes(name).example()
        assert networks.build_decoder(name, 4, shape).output_shape == (None,) + tuple(shape)
        assert len(networks.build_encoder(name, shape).output_shape) == 2


def test_mlp_takes_any_vector_but_no_images():
    assert networks.build_decoder("mlp", 2, (7,)).output_shape == (None, 7)
    with pytest.raises(ValueError, match=r"needs vectors of shape \(D,\)"):
        networks.build_encoder("mlp", (28, 28, 1))


def test_networks_refuse_shapes_they_do_not_declare():
    with pytest.raises(ValueError, match="needs images of shape"):
        networks.build_encoder("conv28", (32, 32, 1))
    with pytest.raises(ValueError, match="needs images of shape"):
        networks.build_decoder("dcgan32", 3, (28, 28, 1))
    with pytest.raises(ValueError, match=r"needs images of shape \(64, 64, 1\)"):
        networks.build_encoder("tcvae_mlp", (64, 64, 3))
    with pytest.raises(ValueError, match="needs images of shape"):
        networks.build_encoder("conv64", (2,))
    with pytest.raises(ValueError, match="Unknown network 'dcgan64'"):
        networks.build_decoder("dcgan64", 3, (64, 64, 1))


def test_tcvae_mlp_layer_widths_and_activations():
    encoder = networks.build_encoder("tcvae_mlp", (64, 64, 1))
    decoder = networks.build_decoder("tcvae_mlp", 10, (64, 64, 1))
    dense = [layer for layer in encoder.layers if hasattr(layer, "units")]
    assert [layer.units for layer in dense] == [1200, 1200]
    dense = [layer for layer in decoder.layers if hasattr(layer, "units")]
    assert [layer.units for layer in dense] == [1200, 1200, 1200, 4096]
    assert [layer.activation.__name__ for layer in dense] == ["tanh"] * 3 + ["linear"]


def test_new_networks_take_a_kernel_regularizer():
    import keras

    for name, (shape, _) in OTHER_NETWORKS.items():
        model = networks.build_decoder(name, 3, shape, kernel_regularizer=keras.regularizers.L2(1e-3))
        assert len(model.losses) > 0


def test_conv_kernels_can_be_redrawn_he_normal_with_slims_fan_in():
    import keras

    keras.utils.set_random_seed(0)
    encoder = networks.build_encoder("conv64", (64, 64, 1))
    decoder = networks.build_decoder("conv64", 10, (64, 64, 1))
    dense_before = [layer.kernel.numpy().copy() for layer in decoder.layers
                    if isinstance(layer, keras.layers.Dense)]
    networks.initialize_conv_kernels([encoder, decoder], "he_normal")

    convs = [layer for model in (encoder, decoder) for layer in model.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    assert len(convs) == 8
    for layer in convs:
        height, width, fan_in_channels, _ = layer.kernel.shape  # ConvT: [h, w, OUT, in]
        expected_std = np.sqrt(2.0 / (height * width * fan_in_channels))
        kernel = layer.kernel.numpy()
        assert kernel.std() == pytest.approx(expected_std, rel=0.15), layer.name
        assert np.abs(kernel).max() <= 2 * expected_std / 0.8796 + 1e-6  # truncated at 2σ
    # The last transposed convolution (32 → 1 channel) has fan-in 4·4·1 = 16: std 0.35, where
    # Glorot uniform would give about 0.06.
    assert convs[-1].kernel.numpy().std() > 0.3
    # Equal shapes get different draws (a reused unseeded Keras 3 initializer would repeat them).
    same_shape = [layer.kernel.numpy() for layer in convs if layer.kernel.shape == (4, 4, 32, 32)]
    assert len(same_shape) >= 2 and not np.allclose(same_shape[0], same_shape[1])
    dense_after = [layer.kernel.numpy() for layer in decoder.layers
                   if isinstance(layer, keras.layers.Dense)]
    assert all(np.array_equal(a, b) for a, b in zip(dense_before, dense_after))


def test_redrawing_conv_kernels_follows_the_global_seed_and_refuses_unknown_names():
    import keras

    def drawn(seed):
        keras.utils.set_random_seed(seed)
        decoder = networks.build_decoder("conv64", 10, (64, 64, 1))
        networks.initialize_conv_kernels([decoder], "he_normal")
        return decoder.layers[-1].kernel.numpy()

    assert np.array_equal(drawn(1), drawn(1))
    assert not np.array_equal(drawn(1), drawn(2))
    decoder = networks.build_decoder("conv64", 10, (64, 64, 1))
    before = decoder.layers[-1].kernel.numpy().copy()
    with pytest.raises(ValueError, match="initializer"):
        networks.initialize_conv_kernels([decoder], "no_such_initializer")
    with pytest.raises(TypeError, match="initializer"):
        networks.initialize_conv_kernels([decoder], keras.initializers.HeNormal())
    assert np.array_equal(decoder.layers[-1].kernel.numpy(), before)

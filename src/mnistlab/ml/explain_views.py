"""What each family's inside view shows (the MLP's layers and templates, the CNN's feature maps, the RNN's
reading row by row), and the notes said under an explanation."""

OCCLUSION_PATCH = 4  # occlusion: 4x4 blocks, 49 of them over 28x28


def _mlp_views(model, config):
    from keras import layers

    hidden = [layer for layer in model.layers if isinstance(layer, layers.Activation) and layer.name != "output"]
    return [(layer.name, f"hidden units after {config.activation}", layer.output) for layer in hidden], [], None


def _cnn_views(model, config):
    from keras import layers

    views = []
    for layer in model.layers:
        if isinstance(layer, layers.Flatten):
            break
        if isinstance(layer, layers.Conv2D) and not config.batch_norm:
            views.append(
                (
                    layer.name,
                    f"convolution {layer.kernel_size[0]}x{layer.kernel_size[1]}, {config.activation}",
                    layer.output,
                )
            )
        elif isinstance(layer, layers.Activation):  # batch norm: the map after conv, norm and activation
            views.append((layer.name, f"convolution, batch norm, {config.activation}", layer.output))
        elif isinstance(layer, (layers.MaxPooling2D, layers.AveragePooling2D)):
            kind = "max" if isinstance(layer, layers.MaxPooling2D) else "average"
            views.append((layer.name, f"{kind} pooling {layer.pool_size[0]}x{layer.pool_size[1]}", layer.output))
    return views, [], None


def _rnn_views(model, config):
    """Every recurrent layer's hidden state after each row; the last one through a copy that returns all 28."""
    from keras import layers

    recurrent = [
        layer
        for layer in model.layers
        if isinstance(layer, (layers.SimpleRNN, layers.LSTM, layers.GRU, layers.Bidirectional))
    ]
    views = [(layer.name, "hidden state after each row", layer.output) for layer in recurrent[:-1]]
    last = recurrent[-1]
    if isinstance(last, layers.Bidirectional):
        inner = last.forward_layer
        copy = layers.Bidirectional(
            type(inner).from_config({**inner.get_config(), "return_sequences": True, "name": "reading"}),
            merge_mode=last.merge_mode,
            name=f"{last.name}_every_row",
        )
    else:
        copy = type(last).from_config({**last.get_config(), "return_sequences": True, "name": f"{last.name}_every_row"})
    sequence = copy(last.input)
    copy.set_weights(last.get_weights())
    views.append((last.name, "hidden state after each row", sequence))
    if isinstance(last, layers.Bidirectional):
        note = (
            "bidirectional: after row t the forward half has read rows 1..t and the backward half rows 28..t, "
            "so there is no belief after t rows; the layer views give the hidden state after each row, both halves side by side"
        )
        return views, [], note
    # The output layers applied to the hidden state after each row: what it believes after t rows.
    beliefs = model.get_layer("output")(model.get_layer("logits")(sequence))
    note = (
        "stacked: the heat map reads the last recurrent layer, which sees the earlier layers' outputs row by row"
        if len(recurrent) > 1
        else None
    )
    return views, [beliefs], note


VIEW_BUILDERS = {"mlp": _mlp_views, "cnn": _cnn_views, "rnn": _rnn_views}


def notes(explainer, explanation) -> dict:
    config = explainer.config
    shapes = [view["shape"] for view in explanation["layers"]]
    label = explanation["labels"][explanation["prediction"]]
    attributions = explanation["attributions"]
    if attributions["method"] == "integrated-gradients":
        labels = explanation["labels"]
        # Each class that missed the bound, by how much: relative to its difference, or in points where that is zero.
        off = [
            f"'{labels[c]}' is {100 * gap:.2f} points off"
            if relative is None
            else f"'{labels[c]}' is {100 * relative:.0f}% off"
            for c, gap, relative, within in zip(
                attributions["classes"],
                attributions["gaps"],
                attributions["relative_gaps"],
                attributions["complete_per_class"],
            )
            if not within
        ]
        attribution = (
            f"Red pixels pushed the model toward '{label}', blue ones away from it: integrated gradients from a blank image, "
            "so each map sums to how much its class's probability rose from the blank image"
            + (
                f" (within 5%, at {attributions['steps']:,} steps)."
                if attributions["complete"]
                else f" (here only roughly: {' and '.join(off)} even at {attributions['max_steps']:,} steps, the most it tries)."
            )
        )
    else:
        attribution = f"Red blocks are those whose blanking lowers '{label}' most (occlusion of {OCCLUSION_PATCH}x{OCCLUSION_PATCH} blocks)."
    if config.family == "mlp":
        inside = (
            f"Each square is one hidden unit after {config.activation}: brighter is more active (Dropout is off when predicting). "
            "A first-layer unit weighs all 784 pixels, so its incoming weights are a 28x28 template: red pixels raise it, blue ones lower it."
        )
    elif config.family == "cnn":
        sizes = " -> ".join(f"{shape[0]}x{shape[1]}" for shape in shapes)
        inside = (
            f"Each tile is one feature map: a small kernel slid over the maps below it (sizes {sizes}). "
            f"Pooling keeps one value per {config.pool_size[0]}x{config.pool_size[1]} block, so each map's side shrinks by that factor and deeper maps see larger parts of the digit."
        )
    else:
        inside = (
            "The RNN reads the image as 28 time steps, one row of 28 pixels each, top to bottom. "
            "Row t of the heat map is what the output layer would say after reading t rows: unsure at first, "
            "it settles once the lower rows tell a 7 from a 9 or a 3 from an 8."
        )
        if explanation["reading"]["note"]:
            inside += " " + explanation["reading"]["note"][0].upper() + explanation["reading"]["note"][1:] + "."
    return {"inside": inside, "attribution": attribution}
